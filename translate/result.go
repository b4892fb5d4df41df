package translate

import "encoding/json"

// Result is the answer for a delivered (or, with dry_run, built) notification.
type Result struct {
	ID          string    `json:"id"`
	Platform    string    `json:"platform"`
	Upstream    *Upstream `json:"upstream,omitempty"`
	Credential  string    `json:"credential,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Attempts    int       `json:"attempts"`
	// Request is set for dry_run: the exact upstream request that would be sent.
	Request *DryRunRequest `json:"request,omitempty"`
}

// DryRunRequest shows an upstream request without sending it. The provider
// token appears only as its decoded header and claims, never the signature.
type DryRunRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	// TokenHeader and TokenClaims are the decoded JWT (authorization header).
	TokenHeader map[string]any  `json:"token_header,omitempty"`
	TokenClaims map[string]any  `json:"token_claims,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	PayloadSize int             `json:"payload_size"`
}
