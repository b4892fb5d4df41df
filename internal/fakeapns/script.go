package fakeapns

// What the fake answers (scripted, standing and default answers) and what
// it recorded.

import (
	"bytes"
	"strings"
)

// Script queues answers for one device token (hex, compared case-insensitively). Each
// request for that token that passes validation consumes the next queued Response; when
// the queue is empty the default answer applies (see [Server.SetDefault]).
func (s *Server) Script(deviceToken string, rs ...Response) {
	k := strings.ToLower(deviceToken)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[k] = append(s.scripts[k], rs...)
}

// ScriptAlways sets a standing answer for one device token (hex, compared
// case-insensitively): every valid request for it that finds nothing queued by
// [Server.Script] gets r, for as long as the server runs or until [Server.Reset]. nil
// removes it. (A token that stays unregistered, for instance, is ScriptAlways(token,
// &Response{Status: 410}).)
func (s *Server) ScriptAlways(deviceToken string, r *Response) {
	k := strings.ToLower(deviceToken)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r == nil {
		delete(s.always, k)
		return
	}
	s.always[k] = *r
}

// SetDefault sets the answer for valid requests whose token has nothing scripted; nil
// means success.
func (s *Server) SetDefault(r *Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r == nil {
		s.def = nil
		return
	}
	c := *r
	s.def = &c
}

// Requests returns a copy of the requests received so far, in order of arrival. Records
// are kept until [Server.Reset]; long benchmarks should reset now and then.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.records))
	for i, r := range s.records {
		out[i] = *r
		out[i].Header = r.Header.Clone()
		out[i].Body = bytes.Clone(r.Body)
	}
	return out
}

// Reset forgets the recorded requests, the scripted and standing answers and the default
// answer. Registered keys, connections and their token state are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = nil
	s.scripts = make(map[string][]Response)
	s.always = make(map[string]Response)
	s.def = nil
}
