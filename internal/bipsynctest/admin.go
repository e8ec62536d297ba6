package bipsynctest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// mountAdmin adds the demo-only endpoints under /_fake/. They are no part of the Bipsync API. The README documents them
// for users ("Try it locally"); TestAdmin_documentedInREADME fails when a route here is missing there.
//
//	POST /_fake/seed?client_id=ID&scope=a+b  {"refresh_token":"..."}; scope defaults to every known scope
//	POST /_fake/revoke-all                   204
//	POST /_fake/advance?d=90m                {"now":"..."}; needs Options.Clock
//	POST /_fake/revoke-pause?d=1s            {"revoke_pause":"1s"}; sets Options.RevokePause (0 turns it off)
//	POST /_fake/replay-detection?on=true     {"replay_detection":true}; sets Options.ReplayDetection (on=false turns it off)
//	GET  /_fake/stats                        Stats as JSON
//	POST /_fake/reset-stats                  204
//	POST /_fake/device/approve?user_code=X   204; &deny=1 denies; 404 for an unknown code, 409 once it is used
func (s *Server) mountAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST "+AdminPrefix+"device/approve", s.adminDeviceApprove)
	mux.HandleFunc("POST "+AdminPrefix+"seed", s.adminSeed)
	mux.HandleFunc("POST "+AdminPrefix+"revoke-all", func(w http.ResponseWriter, _ *http.Request) {
		s.RevokeAll()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+AdminPrefix+"advance", s.adminAdvance)
	mux.HandleFunc("POST "+AdminPrefix+"revoke-pause", s.adminRevokePause)
	mux.HandleFunc("POST "+AdminPrefix+"replay-detection", s.adminReplayDetection)
	mux.HandleFunc("GET "+AdminPrefix+"stats", func(w http.ResponseWriter, _ *http.Request) {
		writeAdminJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST "+AdminPrefix+"reset-stats", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) adminSeed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("client_id")
	s.mu.Lock()
	_, known := s.clients[id]
	s.mu.Unlock()
	if !known {
		writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown client_id"})
		return
	}
	scopes := s.opts.Scopes
	if q.Has("scope") {
		scopes = strings.Fields(q.Get("scope"))
	}
	writeAdminJSON(w, http.StatusOK, map[string]string{"refresh_token": s.IssueRefreshToken(id, scopes)})
}

func (s *Server) adminAdvance(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil {
		writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "d must be a Go duration such as 90m"})
		return
	}
	if s.opts.Clock == nil {
		writeAdminJSON(w, http.StatusConflict, map[string]string{"error": "the server runs on a real clock"})
		return
	}
	s.opts.Clock.Advance(d)
	writeAdminJSON(w, http.StatusOK, map[string]string{"now": s.now().UTC().Format(time.RFC3339Nano)})
}

func (s *Server) adminRevokePause(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil || d < 0 {
		writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "d must be a Go duration of zero or more, such as 1s"})
		return
	}
	s.SetRevokePause(d)
	writeAdminJSON(w, http.StatusOK, map[string]string{"revoke_pause": d.String()})
}

func (s *Server) adminReplayDetection(w http.ResponseWriter, r *http.Request) {
	on, err := strconv.ParseBool(r.URL.Query().Get("on"))
	if err != nil {
		writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "on must be true or false"})
		return
	}
	s.SetReplayDetection(on)
	writeAdminJSON(w, http.StatusOK, map[string]bool{"replay_detection": on})
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) adminDeviceApprove(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	deny := q.Get("deny") == "1" || q.Get("deny") == "true"
	err := s.decideDevice(q.Get("user_code"), !deny)
	switch {
	case errors.Is(err, ErrUnknownUserCode):
		writeAdminJSON(w, http.StatusNotFound, map[string]string{"error": "unknown user_code"})
	case errors.Is(err, ErrDeviceCodeUsed):
		writeAdminJSON(w, http.StatusConflict, map[string]string{"error": "the device code has already been exchanged"})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
