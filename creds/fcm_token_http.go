package creds

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/pushproxy/pushproxy/internal/resend"
	"golang.org/x/oauth2"
)

// What a token source says to the token endpoint and how it reads a
// failure: the request's context, and x/oauth2's errors as FCMTokenError.

// FCMTokenError is a failed access-token request: the token endpoint's
// OAuth error, or a request that got no answer (Status 0).
type FCMTokenError struct {
	Status      int    // HTTP status of the token endpoint's answer; 0 when none
	Code        string // the OAuth error ("invalid_grant"), "" when not given
	Description string // the OAuth error_description
	RetryAfter  string // the answer's Retry-After header
	Err         error  // the underlying error
}

func (e *FCMTokenError) Error() string {
	switch {
	case e.Status == 0:
		return "fetching an FCM access token: " + e.Err.Error()
	case e.Code != "":
		s := "the token endpoint refused the service account's assertion: " + strconv.Itoa(e.Status) + " " + e.Code
		if e.Description != "" {
			s += " (" + e.Description + ")"
		}
		return s
	}
	return "the token endpoint answered HTTP " + strconv.Itoa(e.Status)
}

func (e *FCMTokenError) Unwrap() error { return e.Err }

// tokenError turns x/oauth2's errors into an FCMTokenError.
func tokenError(err error) error {
	if err == nil {
		return nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &FCMTokenError{Code: re.ErrorCode, Description: re.ErrorDescription, Err: err}
		if re.Response != nil {
			e.Status = re.Response.StatusCode
			e.RetryAfter = re.Response.Header.Get("Retry-After")
		}
		if e.Code == "" {
			// x/oauth2 fills ErrorCode only for some content types; read
			// the RFC 6749 body itself.
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				e.Code, e.Description = body.Error, body.Description
			}
		}
		return e
	}
	return &FCMTokenError{Err: err}
}

// withContext is c with every request made under ctx, tracked by pacer.
// x/oauth2/jwt posts the assertion without a context (golang/oauth2#799):
// it takes only the client from ctx, so without this FetchTimeout and
// Close would not reach a token request the endpoint never answers.
func withContext(ctx context.Context, c *http.Client, pacer *resend.Pacer) *http.Client {
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	cc := *c
	cc.Transport = ctxTransport{ctx: ctx, rt: rt, pacer: pacer}
	return &cc
}

type ctxTransport struct {
	ctx   context.Context
	rt    http.RoundTripper
	pacer *resend.Pacer
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, _ := t.pacer.Track(t.ctx)
	return t.rt.RoundTrip(r.WithContext(ctx))
}
