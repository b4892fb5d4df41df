package testca

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Conns numbers the connections an http.Server accepts (1-based, in
// accept order) and tells which one carried a request: what the fakes
// record with each request. Install it with Hook before serving.
type Conns struct {
	mu  sync.Mutex
	n   int
	ids map[net.Conn]int
}

type connKey struct{}

// Hook sets hs's ConnState and ConnContext to number its connections.
func (c *Conns) Hook(hs *http.Server) {
	hs.ConnState = func(conn net.Conn, st http.ConnState) {
		if st != http.StateNew {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ids == nil {
			c.ids = map[net.Conn]int{}
		}
		c.n++
		c.ids[conn] = c.n
	}
	hs.ConnContext = func(ctx context.Context, conn net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, conn)
	}
}

// Count is the number of connections accepted so far.
func (c *Conns) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Of is the number of the connection that carried r, or 0.
func (c *Conns) Of(r *http.Request) int {
	conn, ok := r.Context().Value(connKey{}).(net.Conn)
	if !ok {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[conn]
}
