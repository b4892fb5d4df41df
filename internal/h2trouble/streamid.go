package h2trouble

import (
	"net/http"
	"reflect"
)

// StreamID returns the HTTP/2 stream ID of a request served by
// golang.org/x/net/http2 (handed the ResponseWriter and Request x/net
// passed to the handler), or 0. x/net does not expose it; its request body
// and its response writer hold the stream, so this reads the unexported
// fields by reflection (read-only; set before the handler starts and not
// changed while it runs), checking each step, and gives 0 when the layout
// differs (another x/net version, net/http's own HTTP/2, a wrapped writer).
// The body is tried first, then the writer (a request whose HEADERS frame
// ended the stream has no body of x/net's).
func StreamID(w http.ResponseWriter, r *http.Request) uint32 {
	if r != nil {
		// *requestBody{stream *stream{id uint32}}
		if id := idOf(reflect.ValueOf(r.Body), "requestBody", "stream"); id != 0 {
			return id
		}
	}
	// *responseWriter{rws *responseWriterState{stream *stream{id uint32}}}
	v := x2Struct(reflect.ValueOf(w), "responseWriter")
	if !v.IsValid() {
		return 0
	}
	return idOf(v.FieldByName("rws"), "responseWriterState", "stream")
}

const x2Pkg = "golang.org/x/net/http2"

// x2Struct dereferences v, a pointer to x/net's struct type name, or
// returns the zero Value.
func x2Struct(v reflect.Value, name string) reflect.Value {
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}
	}
	v = v.Elem()
	if v.Kind() != reflect.Struct || v.Type().Name() != name || v.Type().PkgPath() != x2Pkg {
		return reflect.Value{}
	}
	return v
}

// idOf reads holder.field.id where holder is a pointer to x/net's struct
// type holderName and field a pointer to its stream.
func idOf(holder reflect.Value, holderName, field string) uint32 {
	v := x2Struct(holder, holderName)
	if !v.IsValid() {
		return 0
	}
	st := x2Struct(v.FieldByName(field), "stream")
	if !st.IsValid() {
		return 0
	}
	id := st.FieldByName("id")
	if id.Kind() != reflect.Uint32 {
		return 0
	}
	return uint32(id.Uint())
}
