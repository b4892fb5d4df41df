package proxy

import "github.com/pushproxy/pushproxy/translate"

// SetTestHook makes f run before each notification is sent (tests make a
// request path panic with it).
func SetTestHook(s *Server, f func(*translate.Notification)) { s.testHook.Store(&f) }
