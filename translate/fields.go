package translate

import (
	"reflect"
	"strings"
)

// fieldSet maps a path of fixed-shape objects ("", "to", "to.apns", …) to
// the exact JSON names of its fields. encoding/json matches field names
// case-insensitively ("Title" fills title); the API's names are
// case-sensitive, so a key at one of these paths that is not one of its
// names exactly is refused. Free-form objects (data, aps, payload …: maps
// and raw JSON) have no entry.
type fieldSet map[string]map[string]bool

// fieldsOf walks a struct type's JSON fields.
func fieldsOf(t reflect.Type) fieldSet {
	fs := fieldSet{}
	var walk func(path string, t reflect.Type)
	walk = func(path string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		names := map[string]bool{}
		fs[path] = names
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			names[name] = true
			child := name
			if path != "" {
				child = path + "." + name
			}
			walk(child, f.Type)
		}
	}
	walk("", t)
	return fs
}

// notificationFields are the fixed-shape objects of a notification
// (computed once; read-only afterwards).
var notificationFields = fieldsOf(reflect.TypeFor[Notification]())

// batchFields is the batch envelope's.
var batchFields = fieldSet{"": {"notifications": true}}
