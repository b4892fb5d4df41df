// Package translate holds pushproxy's pure functions: the platform-neutral
// Notification, its translation into an APNs request (path, headers, JSON
// payload), the mapping of upstream replies into normalised results and
// errors, and the table of stable error codes.
//
// Nothing here touches the network, files or the wall clock: the current time
// is always passed in by the caller.
package translate
