package fakeapns

// The provider token: how the fake reads it from a request and checks it
// the way APNs does (signature, key, team, age, and the connection's
// token rules).

import (
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenInfo is what the provider token claims before it is verified.
type tokenInfo struct {
	raw      string
	kid, iss string
	iat      int64
	parseErr error
}

func readToken(h http.Header) tokenInfo {
	v := h.Get(headerAuthorization)
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return tokenInfo{}
	}
	ti := tokenInfo{raw: strings.TrimSpace(tok)}
	if ti.raw == "" {
		return ti
	}
	claims := jwt.MapClaims{}
	t, _, err := jwt.NewParser().ParseUnverified(ti.raw, claims)
	if err != nil {
		ti.parseErr = err
		return ti
	}
	ti.kid, _ = t.Header["kid"].(string)
	ti.iss, _ = claims.GetIssuer()
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		ti.iat = iat.Unix()
	}
	return ti
}

// readTokenCached is readToken with a cache of decoded tokens: a fleet of
// requests carries the same token for many minutes.
func (s *Server) readTokenCached(h http.Header) tokenInfo {
	v := h.Get(headerAuthorization)
	s.mu.Lock()
	ti, ok := s.decoded[v]
	s.mu.Unlock()
	if ok {
		return ti
	}
	ti = readToken(h)
	s.mu.Lock()
	if len(s.decoded) > 1000 {
		clear(s.decoded)
	}
	s.decoded[v] = ti
	s.mu.Unlock()
	return ti
}

// authenticate verifies the provider token and the connection's token rules. It returns
// the bundle IDs of the token's team, or the status and reason to answer.
func (s *Server) authenticate(c *conn, ti tokenInfo) (topics []string, status int, reason string) {
	if ti.parseErr != nil || ti.kid == "" {
		return nil, http.StatusForbidden, reasonInvalidProviderToken
	}
	s.mu.Lock()
	key := s.keys[ti.kid]
	if key != nil {
		topics = s.teamTopicsLocked(key.team)
	}
	s.mu.Unlock()
	if key == nil {
		return nil, http.StatusForbidden, reasonInvalidProviderToken
	}

	// Signature and algorithm by the library (once per distinct token, as a
	// server that caches verified tokens would); the time rules below use
	// Options.Now.
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithoutClaimsValidation(),
	)
	s.mu.Lock()
	known := s.verified[ti.kid+"|"+ti.raw]
	s.mu.Unlock()
	if known {
		claims["iss"] = ti.iss
		if ti.iat != 0 {
			claims["iat"] = float64(ti.iat)
		}
	} else {
		if _, err := parser.ParseWithClaims(ti.raw, claims, func(*jwt.Token) (any, error) { return key.pub, nil }); err != nil {
			return nil, http.StatusForbidden, reasonInvalidProviderToken
		}
		s.mu.Lock()
		if len(s.verified) > 1000 {
			clear(s.verified)
		}
		s.verified[ti.kid+"|"+ti.raw] = true
		s.mu.Unlock()
	}
	iss, _ := claims.GetIssuer()
	iatDate, err := claims.GetIssuedAt()
	if iss != key.team || err != nil || iatDate == nil {
		return nil, http.StatusForbidden, reasonInvalidProviderToken
	}
	iat := iatDate.Unix()
	now := s.now()
	switch {
	case now.Sub(time.Unix(iat, 0)) > maxTokenAge:
		return nil, http.StatusForbidden, reasonExpiredProviderToken
	case time.Unix(iat, 0).Sub(now) > maxTokenFuture:
		return nil, http.StatusForbidden, reasonInvalidProviderToken
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.kid == "":
		c.kid, c.team, c.lastJWT, c.lastIat = ti.kid, key.team, ti.raw, iat
	case c.kid != ti.kid || c.team != key.team:
		return nil, http.StatusForbidden, reasonUnrelatedKeyIDInToken
	case c.lastJWT != ti.raw:
		if c.expiredJWT != "" && c.expiredJWT == c.lastJWT {
			c.lastJWT, c.lastIat, c.expiredJWT = ti.raw, iat, ""
			break
		}
		if time.Duration(iat-c.lastIat)*time.Second < minTokenRefresh {
			return nil, http.StatusTooManyRequests, reasonTooManyProviderTokenUpdates
		}
		c.lastJWT, c.lastIat = ti.raw, iat
	}
	return topics, 0, ""
}

// teamTopicsLocked pools the bundle IDs of every key of a team, in registration order.
func (s *Server) teamTopicsLocked(team string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, kid := range s.keyOrder {
		k := s.keys[kid]
		if k == nil || k.team != team {
			continue
		}
		for _, t := range k.topics {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}
