package faults

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseScheduleAcceptsTheDesignExample(t *testing.T) {
	s, err := ParseSchedule([]byte(`{"seed":7,"rules":[
		{"fault":"drop_response","method":"POST","path":"/v1/payment_intents","nth":[1],"count":1},
		{"fault":"delay","delay":"300ms","probability":0.2},
		{"fault":"rate_limit","key_attempts":[1,2]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{Seed: 7, Rules: []Rule{
		{Fault: DropResponse, Method: "POST", Path: "/v1/payment_intents", Nth: []int{1}, Count: 1},
		{Fault: Delay, Delay: Duration(300 * time.Millisecond), Probability: 0.2},
		{Fault: RateLimit, KeyAttempts: []int{1, 2}},
	}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("ParseSchedule = %+v, want %+v", s, want)
	}
}

func TestScheduleJSONRoundTrips(t *testing.T) {
	in := Schedule{Seed: -3, Rules: []Rule{{Fault: Slow, Path: "/v1/*", Delay: Duration(2 * time.Second)}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"delay":"2s"`) {
		t.Fatalf("delay not written as a duration string: %s", b)
	}
	out, err := ParseSchedule(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v, want %+v", out, in)
	}
}

func TestParseScheduleNamesTheBadField(t *testing.T) {
	for _, tc := range []struct {
		name, body, param string
	}{
		{"empty body", ``, "body"},
		{"malformed JSON", `{"seed":7,`, "body"},
		{"not an object", `[1,2]`, "body"},
		{"trailing data", `{"seed":1} {}`, "body"},
		{"unknown top-level field", `{"seed":1,"rulez":[]}`, "rulez"},
		{"seed not integer", `{"seed":"seven"}`, "seed"},
		{"rules not a list", `{"rules":{}}`, "rules"},
		{"rule not an object", `{"rules":[{"fault":"delay","delay":"1s"},3]}`, "rules[1]"},
		{"unknown rule field", `{"rules":[{"fault":"rate_limit","nht":[1]}]}`, "rules[0].nht"},
		{"missing fault", `{"rules":[{"path":"/v1/payment_intents"}]}`, "rules[0].fault"},
		{"unknown fault", `{"rules":[{"fault":"rate_limit"},{"fault":"gremlins"}]}`, "rules[1].fault"},
		{"bad duration", `{"rules":[{"fault":"delay"},{"fault":"delay","delay":"3 parsecs"}]}`, "rules[1].delay"},
		{"numeric duration", `{"rules":[{"fault":"delay","delay":300}]}`, "rules[0].delay"},
		{"negative delay", `{"rules":[{"fault":"delay","delay":"-1s"}]}`, "rules[0].delay"},
		{"delay missing for slow", `{"rules":[{"fault":"slow"}]}`, "rules[0].delay"},
		{"delay on a kind that ignores it", `{"rules":[{"fault":"rate_limit","delay":"1s"}]}`, "rules[0].delay"},
		{"negative count", `{"rules":[{"fault":"unavailable","count":-1}]}`, "rules[0].count"},
		{"count not integer", `{"rules":[{"fault":"unavailable","count":1.5}]}`, "rules[0].count"},
		{"probability above 1", `{"rules":[{"fault":"unavailable","probability":1.5}]}`, "rules[0].probability"},
		{"negative probability", `{"rules":[{"fault":"unavailable","probability":-0.1}]}`, "rules[0].probability"},
		{"nth zero", `{"rules":[{"fault":"reset_before","nth":[2,0]}]}`, "rules[0].nth"},
		{"nth not a list", `{"rules":[{"fault":"reset_before","nth":1}]}`, "rules[0].nth"},
		{"key_attempts zero", `{"rules":[{"fault":"reset_after","key_attempts":[0]}]}`, "rules[0].key_attempts"},
		{"relative path", `{"rules":[{"fault":"reset_after","path":"v1/payment_intents"}]}`, "rules[0].path"},
		{"star inside path", `{"rules":[{"fault":"reset_after","path":"/v1/*/confirm"}]}`, "rules[0].path"},
		{"method with a slash", `{"rules":[{"fault":"reset_after","method":"POST /v1"}]}`, "rules[0].method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSchedule([]byte(tc.body))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error = %v (%T), want *FieldError", err, err)
			}
			if fe.Param != tc.param {
				t.Fatalf("Param = %q, want %q (message %q)", fe.Param, tc.param, fe.Message)
			}
			if fe.Error() != fe.Message || fe.Message == "" {
				t.Fatalf("Error() = %q, Message = %q", fe.Error(), fe.Message)
			}
		})
	}
}

func TestValidateAcceptsEdgeValues(t *testing.T) {
	s := Schedule{Rules: []Rule{
		{Fault: DropResponse},
		{Fault: DropResponse, Delay: Duration(time.Minute)},
		{Fault: Unavailable, Probability: 1, Count: 0, Path: "*"},
		{Fault: ServerError, Method: "post", Path: "/v1/payment_intents*", Nth: []int{1, 3}, KeyAttempts: []int{1}},
	}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Schedule{}).Validate(); err != nil {
		t.Fatalf("an empty schedule is valid: %v", err)
	}
}

func TestKindsAreAllValid(t *testing.T) {
	ks := Kinds()
	if len(ks) != 9 {
		t.Fatalf("Kinds() = %v", ks)
	}
	for _, k := range ks {
		if !k.Valid() {
			t.Errorf("%s not valid", k)
		}
	}
	if Kind("nope").Valid() {
		t.Error("unknown kind valid")
	}
	ks[0] = "changed"
	if Kinds()[0] != DropResponse {
		t.Error("Kinds() shares its backing array")
	}
}
