package translate_test

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/translate"
)

// apnsTwoStep is how the APNs sender classified an answer before
// ClassifyAPNs: FromAPNs's body as it was, then a second look-up of the row
// for its retry policy. Kept here, written out on exported names only, as
// the reference ClassifyAPNs must agree with.
func apnsTwoStep(r translate.APNsReply, now time.Time) (*translate.Error, translate.RetryPolicy) {
	reason, ts := translate.ParseAPNsBody(r.Body)
	row := translate.APNsRowFor(r.Status, reason)
	e := &translate.Error{
		Code: row.Code, Message: row.Message, Hint: row.Hint,
		Retryable: row.Retryable, Action: row.Action, Platform: translate.PlatformAPNs,
		Upstream: &translate.Upstream{Status: r.Status, Reason: reason, Timestamp: ts, APNsID: r.APNsID},
	}
	if r.Status == 410 && ts > 0 {
		e.Hint = row.Hint + "; APNs reported it inactive since " + time.UnixMilli(ts).UTC().Format(time.RFC3339)
	}
	e.RetryAfter = translate.RetryAfterSeconds(r.RetryAfter, now)
	// The sender's second look-up, on the reason the error carries.
	return e, translate.APNsRowFor(r.Status, e.Upstream.Reason).Policy
}

// TestClassifyAPNsAgreesWithTwoStep: for every documented reason under its
// own status and under every other status APNs (or a gateway) may answer,
// for an undocumented reason, and for bodies without a reason,
// ClassifyAPNs gives the error FromAPNs gives and the policy of the row
// APNsRowFor finds.
func TestClassifyAPNsAgreesWithTwoStep(t *testing.T) {
	statuses := []int{400, 401, 403, 404, 405, 410, 413, 418, 429, 500, 502, 503}
	ts := strconv.FormatInt(time.Date(2026, 11, 19, 8, 30, 15, 0, time.UTC).UnixMilli(), 10)
	type body struct{ name, body string }
	var bodies []body
	for _, row := range translate.APNsReasons {
		bodies = append(bodies,
			body{row.Reason, `{"reason":"` + row.Reason + `"}`},
			body{row.Reason + " with timestamp", `{"reason":"` + row.Reason + `","timestamp":` + ts + `}`})
	}
	bodies = append(bodies,
		body{"unknown reason", `{"reason":"SomethingNew"}`},
		body{"unknown reason with timestamp", `{"reason":"SomethingNew","timestamp":` + ts + `}`},
		body{"empty body", ``},
		body{"json without reason", `{"error":"x"}`},
		body{"html body", `<html><body>Bad Gateway</body></html>`})
	retryAfters := []string{"", "30", time.Date(2026, 11, 20, 10, 1, 30, 0, time.UTC).Format("Mon, 02 Jan 2006 15:04:05 GMT")}

	seen := map[string]bool{} // documented reasons checked under their own status
	for _, b := range bodies {
		for _, status := range statuses {
			for _, ra := range retryAfters {
				r := translate.APNsReply{Status: status, APNsID: testAPNsID, Body: []byte(b.body), RetryAfter: ra}
				gotE, gotP := translate.ClassifyAPNs(r, testNow)
				wantE, wantP := apnsTwoStep(r, testNow)
				name := strconv.Itoa(status) + " " + b.name + " Retry-After " + strconv.Quote(ra)
				if gotP != wantP {
					t.Errorf("%s: policy %s, want %s", name, gotP, wantP)
				}
				if !reflect.DeepEqual(gotE, wantE) {
					t.Errorf("%s:\n got %+v (upstream %+v)\nwant %+v (upstream %+v)", name, gotE, gotE.Upstream, wantE, wantE.Upstream)
				}
				if fe := translate.FromAPNs(r, testNow); !reflect.DeepEqual(fe, gotE) {
					t.Errorf("%s: FromAPNs %+v differs from ClassifyAPNs %+v", name, fe, gotE)
				}
				if row, ok := translate.LookupAPNsReason(gotE.Upstream.Reason); ok && row.Status == status {
					seen[row.Reason] = true
					if gotP != row.Policy || gotE.Code != row.Code {
						t.Errorf("%s: %s/%s, want the row's %s/%s", name, gotE.Code, gotP, row.Code, row.Policy)
					}
				}
			}
		}
	}
	for _, row := range translate.APNsReasons {
		if !seen[row.Reason] {
			t.Errorf("%s was not checked under its documented status %d", row.Reason, row.Status)
		}
	}
}
