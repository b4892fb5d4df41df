package translate

import "time"

// The error alone of each Classify function, for the tests that check the
// normalised answer and not the sender's retry policy.

func FromAPNs(r APNsReply, now time.Time) *Error {
	e, _ := ClassifyAPNs(r, now)
	return e
}

func FromWebPush(r WebPushReply, now time.Time) *Error {
	e, _ := ClassifyWebPush(r, now)
	return e
}

func FromFCM(r FCMReply, now time.Time) *Error {
	e, _ := ClassifyFCM(r, now)
	return e
}
