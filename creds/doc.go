// Package creds owns pushproxy's credential files: it parses and validates
// APNs .p8 keys, VAPID key pairs, Google service-account keys for FCM (and
// the local API's bearer token file), keeps the last good version of each in
// an immutable Snapshot that is swapped atomically on reload, signs and
// caches APNs provider tokens and VAPID JWTs, and holds the FCM OAuth 2.0
// access-token sources (FCMTokenSource).
//
// A file that fails to load or validate never replaces a good one: the
// credential keeps its last good key and reports the failure.
package creds
