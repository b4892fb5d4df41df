package send

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/translate"
)

// TestNotification: only the values of flags that were given count, and
// each wrong combination is named.
func TestNotification(t *testing.T) {
	tok := strings.Repeat("ab", 32)
	o := &Options{APNsToken: tok, Title: "Hi", Badge: 0, TTL: 0, Data: `{"order":"1234"}`,
		Set: map[string]bool{"apns-token": true, "badge": true, "data": true}}
	n, err := o.Notification()
	if err != nil {
		t.Fatal(err)
	}
	if n.To.APNs == nil || n.To.APNs.Token != tok || n.Title != "Hi" || n.Badge == nil || *n.Badge != 0 || n.TTL != nil || string(n.Data["order"]) != `"1234"` {
		t.Errorf("notification %+v", n)
	}

	sub := filepath.Join(t.TempDir(), "sub.json")
	if err := os.WriteFile(sub, []byte(`{"endpoint":"https://push.example.net/send/s3cr3t","keys":{"p256dh":"a","auth":"b"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	o = &Options{Subscription: sub, VAPIDKey: "k2", Set: map[string]bool{"subscription": true, "vapid-key": true}}
	n, err = o.Notification()
	if err != nil || n.To.WebPush == nil || n.To.WebPush.VAPIDKey != "k2" {
		t.Fatalf("web push: %v %+v", err, n)
	}
	var out bytes.Buffer
	o.PrintResult(&out, &translate.Result{Platform: translate.PlatformWebPush, Credential: "k2", Attempts: 1, Upstream: &translate.Upstream{Status: 201}})
	if s := out.String(); !strings.Contains(s, "https://push.example.net/…") || strings.Contains(s, "s3cr3t") || !strings.Contains(s, "VAPID key k2") {
		t.Errorf("result:\n%s", s)
	}

	// FCM: the registration token and the credential's name.
	fcmTok := "fake-instance:APA91b" + strings.Repeat("x", 40)
	o = &Options{FCMToken: fcmTok, FCMCredential: "beta", Body: "b", Set: map[string]bool{"fcm-token": true, "fcm-credential": true}}
	n, err = o.Notification()
	if err != nil || n.To.FCM == nil || n.To.FCM.Token != fcmTok || n.To.FCM.Credential != "beta" || n.To.APNs != nil || n.To.WebPush != nil {
		t.Fatalf("fcm: %v %+v", err, n)
	}
	out.Reset()
	o.PrintResult(&out, &translate.Result{Platform: translate.PlatformFCM, Credential: "beta", Attempts: 1,
		Upstream: &translate.Upstream{Status: 200, MessageID: "projects/p/messages/42"}})
	if s := out.String(); !strings.HasPrefix(s, "delivered (fcm): upstream 200\n") || strings.Contains(s, "APA91b") ||
		!strings.Contains(s, "registration token "+translate.FingerprintString(fcmTok)+" (fingerprint)") ||
		!strings.Contains(s, "message-id   projects/p/messages/42") || !strings.Contains(s, "credential   beta") {
		t.Errorf("fcm result:\n%s", s)
	}

	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Set: map[string]bool{}}, "a recipient is required"},
		{Options{Set: map[string]bool{"apns-token": true, "subscription": true}}, "give one recipient, not --apns-token and --subscription"},
		{Options{Set: map[string]bool{"fcm-token": true, "subscription": true, "apns-token": true}}, "not --apns-token and --subscription and --fcm-token"},
		{Options{Set: map[string]bool{"fcm-token": true, "credential": true}}, "--credential is for APNs (--apns-token), not --fcm-token"},
		{Options{Set: map[string]bool{"apns-token": true, "fcm-credential": true}}, "--fcm-credential is for FCM (--fcm-token), not --apns-token"},
		{Options{Subscription: sub, Set: map[string]bool{"subscription": true, "topic": true}}, "--topic is for APNs"},
		{Options{Set: map[string]bool{"apns-token": true, "vapid-key": true}}, "--vapid-key is for Web Push"},
		{Options{Data: "[1]", Set: map[string]bool{"apns-token": true, "data": true}}, "--data must be a JSON object"},
		{Options{Subscription: filepath.Join(t.TempDir(), "none.json"), Set: map[string]bool{"subscription": true}}, "--subscription"},
	} {
		if _, err := c.o.Notification(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o.Set, err, c.want)
		}
	}
}

// TestHideDeviceToken: a dry run's APNs URL shows the token as its
// fingerprint only, once.
func TestHideDeviceToken(t *testing.T) {
	tok := strings.Repeat("cd", 32)
	r := &translate.DryRunRequest{URL: "https://api.push.apple.com/3/device/" + tok}
	HideDeviceToken(r)
	want := "https://api.push.apple.com/3/device/<device token " + translate.FingerprintString(tok) + ">"
	if r.URL != want {
		t.Errorf("%s, want %s", r.URL, want)
	}
	HideDeviceToken(r)
	if r.URL != want {
		t.Errorf("twice: %s", r.URL)
	}
}

func TestPrintError(t *testing.T) {
	var out bytes.Buffer
	PrintError(&out, &translate.Error{Code: translate.CodeRecipientGone, Message: "gone", Action: "remove_recipient", Platform: "apns",
		Upstream: &translate.Upstream{Status: 410, Reason: "Unregistered"}})
	if s := out.String(); !strings.HasPrefix(s, "failed: recipient_gone (the API would answer HTTP 410)") || !strings.Contains(s, "410 Unregistered") {
		t.Errorf("%s", s)
	}
}
