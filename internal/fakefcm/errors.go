package fakefcm

import "encoding/json"

// Error codes the fake can be scripted to answer with (see Answer).
const (
	Unregistered        = "UNREGISTERED"
	InvalidArgument     = "INVALID_ARGUMENT"
	InvalidToken        = "INVALID_ARGUMENT/token" // INVALID_ARGUMENT about the registration token
	SenderIDMismatch    = "SENDER_ID_MISMATCH"
	QuotaExceeded       = "QUOTA_EXCEEDED"
	Unavailable         = "UNAVAILABLE"
	Internal            = "INTERNAL"
	ThirdPartyAuthError = "THIRD_PARTY_AUTH_ERROR"
	Unauthenticated     = "UNAUTHENTICATED"   // 401 without FcmError: the access token refused
	PermissionDenied    = "PERMISSION_DENIED" // 403 without FcmError: the account lacks the role
	ServiceDisabled     = "SERVICE_DISABLED"  // 403 without FcmError: the API is disabled
	ProjectNotFound     = "NOT_FOUND"         // 404 without FcmError: no such project
	UnspecifiedError    = "UNSPECIFIED_ERROR"
)

// Answer is FCM's answer for one of the error codes above, with the
// status, google.rpc status and message FCM uses.
func Answer(code string) Response {
	switch code {
	case Unregistered:
		return Response{Status: 404, RPCStatus: "NOT_FOUND", ErrorCode: Unregistered, Message: "Requested entity was not found."}
	case InvalidToken:
		return Response{Status: 400, RPCStatus: "INVALID_ARGUMENT", ErrorCode: InvalidArgument, Message: "The registration token is not a valid FCM registration token"}
	case InvalidArgument:
		return Response{Status: 400, RPCStatus: "INVALID_ARGUMENT", ErrorCode: InvalidArgument, Message: "Request contains an invalid argument.",
			FieldViolations: []FieldViolation{{"message.android.notification.color", "Invalid value at 'message.android.notification.color', must be #rrggbb"}}}
	case SenderIDMismatch:
		return Response{Status: 403, RPCStatus: "PERMISSION_DENIED", ErrorCode: SenderIDMismatch, Message: "SenderId mismatch"}
	case QuotaExceeded:
		return Response{Status: 429, RPCStatus: "RESOURCE_EXHAUSTED", ErrorCode: QuotaExceeded, Message: "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'", RetryAfter: "1"}
	case Unavailable:
		return Response{Status: 503, RPCStatus: "UNAVAILABLE", ErrorCode: Unavailable, Message: "The service is currently unavailable."}
	case Internal:
		return Response{Status: 500, RPCStatus: "INTERNAL", ErrorCode: Internal, Message: "Internal error encountered."}
	case ThirdPartyAuthError:
		return Response{Status: 401, RPCStatus: "UNAUTHENTICATED", ErrorCode: ThirdPartyAuthError, Message: "Auth error from APNS or Web Push Service"}
	case Unauthenticated:
		return Response{Status: 401, RPCStatus: "UNAUTHENTICATED", Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."}
	case PermissionDenied:
		return Response{Status: 403, RPCStatus: "PERMISSION_DENIED", InfoReason: "IAM_PERMISSION_DENIED", Message: "Permission 'cloudmessaging.messages.create' denied on resource (or it may not exist)."}
	case ServiceDisabled:
		return Response{Status: 403, RPCStatus: "PERMISSION_DENIED", InfoReason: "SERVICE_DISABLED", Message: "Firebase Cloud Messaging API has not been used in project before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/fcm.googleapis.com/overview then retry."}
	case ProjectNotFound:
		return Response{Status: 404, RPCStatus: "NOT_FOUND", Message: "Requested entity was not found."}
	case UnspecifiedError:
		return Response{Status: 500, RPCStatus: "UNKNOWN", ErrorCode: UnspecifiedError, Message: "Unknown error."}
	}
	return Response{Status: 500, RPCStatus: "INTERNAL", Message: "fakefcm: unknown scripted code " + code}
}

// rpcStatusFor is the google.rpc status FCM pairs with an HTTP status.
func rpcStatusFor(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 503:
		return "UNAVAILABLE"
	}
	return "INTERNAL"
}

// ErrorBody is Google's error JSON for a response.
func ErrorBody(r Response) []byte {
	if r.Body != "" {
		return []byte(r.Body)
	}
	st := r.RPCStatus
	if st == "" {
		st = rpcStatusFor(r.Status)
	}
	var details []any
	if r.ErrorCode != "" {
		details = append(details, map[string]any{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": r.ErrorCode})
	}
	if len(r.FieldViolations) > 0 {
		details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": r.FieldViolations})
	}
	if r.InfoReason != "" {
		details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": r.InfoReason, "domain": "googleapis.com"})
	}
	e := map[string]any{"code": r.Status, "message": r.Message, "status": st}
	if details != nil {
		e["details"] = details
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return b
}
