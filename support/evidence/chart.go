package evidence

import (
	"fmt"
	"strings"
	"time"
)

// chart is one policy's backoff delays against its envelope, laid out for
// an inline SVG: a band from lo to hi per retry, the delays as points.
type chart struct {
	Title    string
	Caption  string
	W, H     int
	Plot     box
	Band     string // SVG path of the envelope band
	Points   []point
	Observed []point
	YTicks   []tick
	XTicks   []tick
	Outside  int
}

type box struct{ X, Y, W, H int }

type point struct {
	X, Y  float64
	Label string
	Out   bool
}

type tick struct {
	Pos   float64
	Label string
}

func charts(bs []Backoff) []chart {
	out := make([]chart, 0, len(bs))
	for _, b := range bs {
		out = append(out, newChart(b))
	}
	return out
}

func newChart(b Backoff) chart {
	c := chart{Title: b.Policy, W: 340, H: 190, Plot: box{X: 52, Y: 12, W: 272, H: 140}}
	c.Caption = fmt.Sprintf("base %v, cap %v, seed %d", b.Base, b.Cap, b.Seed)
	n := max(len(b.Delays), len(b.Lo), len(b.Hi), len(b.Observed))
	if n == 0 {
		return c
	}
	var top time.Duration
	for _, s := range [][]time.Duration{b.Delays, b.Hi, b.Observed} {
		for _, d := range s {
			top = max(top, d)
		}
	}
	top = niceCeil(top)
	x := func(i int) float64 { // retry i (0-based) at the centre of its slot
		return float64(c.Plot.X) + (float64(i)+0.5)*float64(c.Plot.W)/float64(n)
	}
	y := func(d time.Duration) float64 {
		if top == 0 {
			return float64(c.Plot.Y + c.Plot.H)
		}
		return float64(c.Plot.Y+c.Plot.H) - float64(d)/float64(top)*float64(c.Plot.H)
	}
	half := float64(c.Plot.W) / float64(n) * 0.32
	var band strings.Builder
	for i := 0; i < n && i < len(b.Lo) && i < len(b.Hi); i++ {
		fmt.Fprintf(&band, "M%.1f %.1fH%.1fV%.1fH%.1fZ", x(i)-half, y(b.Hi[i]), x(i)+half, y(b.Lo[i]), x(i)-half)
	}
	c.Band = band.String()
	for i, d := range b.Delays {
		p := point{X: x(i), Y: y(d), Label: fmt.Sprintf("retry %d: waited %s", i+1, ms(d))}
		if i < len(b.Lo) && i < len(b.Hi) && (d < b.Lo[i] || d > b.Hi[i]) {
			p.Out = true
			c.Outside++
		}
		c.Points = append(c.Points, p)
	}
	for i, d := range b.Observed {
		c.Observed = append(c.Observed, point{X: x(i) + half*0.6, Y: y(d), Label: fmt.Sprintf("retry %d: server saw a gap of %s", i+1, ms(d))})
	}
	for i := 0; i <= 4; i++ {
		d := top * time.Duration(i) / 4
		c.YTicks = append(c.YTicks, tick{Pos: y(d), Label: shortDur(d)})
	}
	for i := 0; i < n; i++ {
		c.XTicks = append(c.XTicks, tick{Pos: x(i), Label: fmt.Sprint(i + 1)})
	}
	return c
}

// niceCeil rounds a duration up to 1, 2 or 5 times a power of ten
// milliseconds, so the axis reads in round numbers.
func niceCeil(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Millisecond
	}
	step := time.Millisecond
	for {
		for _, m := range []time.Duration{1, 2, 5} {
			if d <= m*step {
				return m * step
			}
		}
		step *= 10
	}
}

func shortDur(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%gs", d.Seconds())
	}
	return fmt.Sprintf("%gms", float64(d)/float64(time.Millisecond))
}
