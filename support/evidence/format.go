package evidence

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// money formats minor units as "EUR 2,400.00".
func money(currency string, minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s %s%s.%02d", strings.ToUpper(currency), sign, thousands(minor/100), minor%100)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// moneyMap formats a currency → minor units map, "EUR 0.00" when empty.
func moneyMap(m map[string]int64) string {
	if len(m) == 0 {
		return money("eur", 0)
	}
	curs := make([]string, 0, len(m))
	for c := range m {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	parts := make([]string, len(curs))
	for i, c := range curs {
		parts[i] = money(c, m[c])
	}
	return strings.Join(parts, ", ")
}

// total sums a currency map, whatever the currencies (for "any at all").
func total(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

// ms formats a duration in milliseconds, to the tenth when short.
func ms(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	f := float64(d) / float64(time.Millisecond)
	if f < 100 {
		return strconv.FormatFloat(f, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(f, 'f', 0, 64) + " ms"
}
