package creds

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2/google"
)

// FCM access-token timing and scope.
const (
	// FCMScope is the OAuth 2.0 scope of the FCM HTTP v1 API.
	FCMScope = "https://www.googleapis.com/auth/firebase.messaging"
	// FCMRefreshBefore is how long before its expiry an access token is
	// renewed (in the background: requests keep using it meanwhile).
	FCMRefreshBefore = 5 * time.Minute
	// FCMDefaultTokenURL is Google's token endpoint, for a file without
	// token_uri.
	FCMDefaultTokenURL = google.JWTTokenURL
)

// ErrNotServiceAccount is wrapped by every ParseServiceAccount failure.
var ErrNotServiceAccount = errors.New("not a Google service-account key")

// FCMSpec is one configured FCM credential (config fcm: [{name,
// service_account_file, project_id}]).
type FCMSpec struct {
	Name               string
	ServiceAccountFile string
	// ProjectID is the Firebase project to send for; "" means the file's
	// project_id. A different value is refused (see ParseServiceAccount).
	ProjectID string
}

// ServiceAccount is a parsed and validated Google service-account key file.
// It never changes once made. The private key is not printed by any method.
type ServiceAccount struct {
	ProjectID    string // the project to send for (the spec's, else the file's)
	ClientEmail  string
	PrivateKeyID string
	TokenURI     string // the file's token_uri (https), or FCMDefaultTokenURL
	Key          *rsa.PrivateKey
	// Fingerprint is the first 8 hex digits of the SHA-256 of the public
	// key (PKIX DER): safe to log and show in /readyz.
	Fingerprint string
	keyPEM      []byte // the file's private_key, for x/oauth2's jwt.Config
}

// serviceAccountFile is every field of the JSON files ParseServiceAccount
// tells apart.
type serviceAccountFile struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
	// google-services.json (the Android app's client configuration).
	ProjectInfo json.RawMessage `json:"project_info"`
	Client      json.RawMessage `json:"client"`
	// authorized_user (gcloud auth application-default login).
	RefreshToken string `json:"refresh_token"`
}

// ParseServiceAccount parses and validates a service-account key file as
// the Firebase console (Project settings > Service accounts > Generate new
// private key) or the Google Cloud console writes it, for the project
// projectID ("" means the file's). Its errors name the classic mistakes:
// google-services.json given instead of the key; a legacy FCM server key
// (AAAA…, the API Google shut down in 2024); an authorized_user or other
// non-service-account credential; a missing or non-RSA private_key; a
// projectID that differs from the file's project_id; a token_uri that is
// not https. The check command runs it on the configured files.
func ParseServiceAccount(data []byte, projectID string) (*ServiceAccount, error) {
	text := bytes.TrimSpace(data)
	if len(text) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrNotServiceAccount)
	}
	if text[0] != '{' {
		s := string(text)
		switch {
		case strings.HasPrefix(s, "AAAA") || strings.Contains(s, ":APA91b"):
			return nil, fmt.Errorf("%w: the file holds a legacy FCM server key (AAAA…), for the legacy HTTP API Google shut down in 2024; download a service-account key instead (Firebase console > Project settings > Service accounts > Generate new private key)", ErrNotServiceAccount)
		case strings.Contains(s, "-----BEGIN"):
			return nil, fmt.Errorf("%w: the file is a bare PEM key; give the whole service-account JSON file the console downloads (it names client_email and private_key_id too)", ErrNotServiceAccount)
		}
		return nil, fmt.Errorf("%w: the file is not JSON (expected the service-account JSON the Firebase console downloads)", ErrNotServiceAccount)
	}
	var f serviceAccountFile
	if err := json.Unmarshal(text, &f); err != nil {
		return nil, fmt.Errorf("%w: the JSON is malformed: %v", ErrNotServiceAccount, err)
	}
	switch {
	case f.Type == "" && (len(f.ProjectInfo) > 0 || len(f.Client) > 0):
		return nil, fmt.Errorf("%w: this is google-services.json, the Android app's client configuration; sending needs the project's service-account key (Firebase console > Project settings > Service accounts > Generate new private key)", ErrNotServiceAccount)
	case f.Type == "authorized_user":
		return nil, fmt.Errorf("%w: this is an authorized_user file (a person's gcloud login, from gcloud auth application-default login); use a service-account key (Firebase console > Project settings > Service accounts > Generate new private key)", ErrNotServiceAccount)
	case f.Type == "":
		return nil, fmt.Errorf(`%w: the file has no "type"; a service-account key says "type": "service_account"`, ErrNotServiceAccount)
	case f.Type != "service_account":
		return nil, fmt.Errorf("%w: the file's type is %q; pushproxy needs a service-account key (\"type\": \"service_account\")", ErrNotServiceAccount, f.Type)
	}
	if f.ClientEmail == "" || !strings.Contains(f.ClientEmail, "@") {
		return nil, fmt.Errorf("%w: client_email is missing or not an address (it is the service account's …@….iam.gserviceaccount.com)", ErrNotServiceAccount)
	}
	if f.PrivateKeyID == "" {
		return nil, fmt.Errorf("%w: private_key_id is missing; use the file as the console downloads it", ErrNotServiceAccount)
	}
	if f.PrivateKey == "" {
		return nil, fmt.Errorf("%w: private_key is missing; keys made in the console carry it, keys uploaded by a person do not (make a new key)", ErrNotServiceAccount)
	}
	key, err := parseRSAKey([]byte(f.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("%w: private_key: %v", ErrNotServiceAccount, err)
	}
	tokenURI := f.TokenURI
	if tokenURI == "" {
		tokenURI = FCMDefaultTokenURL
	}
	if err := checkTokenURL("token_uri", tokenURI); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotServiceAccount, err)
	}
	project := f.ProjectID
	switch {
	case projectID != "" && f.ProjectID != "" && projectID != f.ProjectID:
		return nil, fmt.Errorf("project_id %q is configured but the service account belongs to project %q: remove project_id from the configuration, or use a key of that project's service account", projectID, f.ProjectID)
	case projectID != "":
		project = projectID
	case project == "":
		return nil, fmt.Errorf("%w: project_id is missing from the file; set project_id in the configuration", ErrNotServiceAccount)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the public key: %v", ErrNotServiceAccount, err)
	}
	sum := sha256.Sum256(der)
	return &ServiceAccount{
		ProjectID: project, ClientEmail: f.ClientEmail, PrivateKeyID: f.PrivateKeyID, TokenURI: tokenURI,
		Key: key, Fingerprint: hex.EncodeToString(sum[:4]), keyPEM: []byte(f.PrivateKey),
	}, nil
}

// LoadServiceAccount reads and validates a spec's file.
func LoadServiceAccount(spec FCMSpec) (*ServiceAccount, error) {
	data, err := os.ReadFile(spec.ServiceAccountFile)
	if err != nil {
		return nil, fmt.Errorf("reading service account file: %w", err)
	}
	sa, err := ParseServiceAccount(data, spec.ProjectID)
	if err != nil {
		return nil, fmt.Errorf("service account file %s: %w", spec.ServiceAccountFile, err)
	}
	return sa, nil
}

// String shows the account without its key.
func (sa *ServiceAccount) String() string {
	return fmt.Sprintf("service account %s (project %s, key %s, fingerprint %s)", sa.ClientEmail, sa.ProjectID, sa.PrivateKeyID, sa.Fingerprint)
}

// LogValue is what log/slog shows of an account: never its key.
func (sa *ServiceAccount) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_email", sa.ClientEmail), slog.String("project_id", sa.ProjectID),
		slog.String("private_key_id", sa.PrivateKeyID), slog.String("fingerprint", sa.Fingerprint))
}

// MarshalJSON encodes the account without its key.
func (sa *ServiceAccount) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"client_email": sa.ClientEmail, "project_id": sa.ProjectID,
		"private_key_id": sa.PrivateKeyID, "fingerprint": sa.Fingerprint})
}

// parseRSAKey parses the private_key PEM: PKCS#8 (what Google writes) or
// PKCS#1, RSA only.
func parseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block (expected -----BEGIN PRIVATE KEY-----; a key pasted by hand may have lost its \\n line breaks)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return nil, errors.New("is an EC key; Google service accounts sign with RSA (RS256)")
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("is encrypted; use the file as the console downloads it")
	default:
		return nil, fmt.Errorf("unexpected PEM block %q (expected PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot be parsed: %v", err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("is a %T key; Google service accounts sign with RSA (RS256)", key)
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("is a %d-bit RSA key; Google issues 2048-bit keys", rk.N.BitLen())
	}
	return rk, nil
}

// checkTokenURL refuses a token endpoint that is not an https URL: the
// assertion sent there is a bearer credential for an hour.
func checkTokenURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not a URL", what, s)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%s %q is not https: the signed assertion would travel in clear text", what, s)
	}
	if u.User != nil {
		return fmt.Errorf("%s must not carry user-info", what)
	}
	return nil
}

// EncodeServiceAccount writes a service-account key file the way the
// Google Cloud console does (PKCS#8 private_key), for the demo and tests,
// which make throwaway keys. tokenURI "" means FCMDefaultTokenURL.
func EncodeServiceAccount(key *rsa.PrivateKey, clientEmail, privateKeyID, projectID, tokenURI string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	if tokenURI == "" {
		tokenURI = FCMDefaultTokenURL
	}
	f := map[string]string{
		"type":                        "service_account",
		"project_id":                  projectID,
		"private_key_id":              privateKeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                clientEmail,
		"client_id":                   "100000000000000000000",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding service account: %w", err)
	}
	return append(out, '\n'), nil
}
