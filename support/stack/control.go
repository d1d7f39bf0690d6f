package stack

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/travelbook/onecharge/support/faults"
)

// controlMux serves the control API of DESIGN.md under /_onecharge/ and
// hands everything else to the Stripe chain.
func (s *Stack) controlMux(stripe http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_onecharge/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "target": s.Target})
	})
	mux.HandleFunc("GET /_onecharge/ledger", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Ledger.Snapshot())
	})
	mux.HandleFunc("GET /_onecharge/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.faultsView())
	})
	mux.HandleFunc("POST /_onecharge/faults", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeControlError(w, "body", "could not read the request body: "+err.Error())
			return
		}
		sched, err := faults.ParseSchedule(body)
		if err == nil {
			err = s.Faults.Set(sched)
		}
		if err != nil {
			var fe *faults.FieldError
			if errors.As(err, &fe) {
				writeControlError(w, fe.Param, fe.Message)
			} else {
				writeControlError(w, "body", err.Error())
			}
			return
		}
		writeJSON(w, http.StatusOK, s.faultsView())
	})
	mux.HandleFunc("DELETE /_onecharge/faults", func(w http.ResponseWriter, r *http.Request) {
		s.Faults.Clear()
		writeJSON(w, http.StatusOK, s.faultsView())
	})
	mux.HandleFunc("GET /_onecharge/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"now": s.Clock.Now().UTC().Format(time.RFC3339)})
	})
	mux.HandleFunc("POST /_onecharge/clock", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Advance string `json:"advance"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeControlError(w, "body", `the body must be JSON such as {"advance":"25h"}: `+err.Error())
			return
		}
		d, err := time.ParseDuration(req.Advance)
		if err != nil || d < 0 {
			writeControlError(w, "advance", `advance must be a positive Go duration such as "25h" or "90m"`)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"now": s.Clock.Advance(d).UTC().Format(time.RFC3339)})
	})
	mux.HandleFunc("POST /_onecharge/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	})
	mux.HandleFunc("/_onecharge/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, controlError{Error: fieldMessage{
			Param:   "path",
			Message: "unknown control endpoint " + r.Method + " " + r.URL.Path + ": see GET /_onecharge/health, /ledger, /faults, POST /clock, /reset",
		}})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isControl(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		stripe.ServeHTTP(w, r)
	})
}

type faultsView struct {
	Seed     int64               `json:"seed"`
	Rules    []faults.Rule       `json:"rules"`
	Injected []faults.Injection  `json:"injected"`
	Counts   map[faults.Kind]int `json:"counts"`
}

func (s *Stack) faultsView() faultsView {
	sched := s.Faults.Schedule()
	v := faultsView{Seed: sched.Seed, Rules: sched.Rules, Injected: s.Faults.Injected(), Counts: s.Faults.Counts()}
	if v.Rules == nil {
		v.Rules = []faults.Rule{}
	}
	if v.Injected == nil {
		v.Injected = []faults.Injection{}
	}
	if v.Counts == nil {
		v.Counts = map[faults.Kind]int{}
	}
	return v
}

type fieldMessage struct {
	Message string `json:"message"`
	Param   string `json:"param"`
}

type controlError struct {
	Error fieldMessage `json:"error"`
}

// writeControlError answers 400 {"error":{"message","param"}}, naming the
// field at fault; nothing recorded so far is touched.
func writeControlError(w http.ResponseWriter, param, msg string) {
	writeJSON(w, http.StatusBadRequest, controlError{Error: fieldMessage{Message: msg, Param: param}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
