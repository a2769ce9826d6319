package strictjson

import (
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	type doc struct {
		A int `json:"a"`
	}
	tests := []struct {
		in       string
		want     int
		trailing bool
		fails    bool
	}{
		{`{"a":1}`, 1, false, false},
		{" {\"a\":2}\n", 2, false, false},
		{`{"a":1,"b":2}`, 0, false, true},
		{`{"a":1}{"a":2}`, 0, true, true},
		{`{"a":1} x`, 0, true, true},
		{`{"a":`, 0, false, true},
		{``, 0, false, true},
	}
	for _, tt := range tests {
		var d doc
		err := Decode([]byte(tt.in), &d)
		if (err != nil) != tt.fails || errors.Is(err, ErrTrailingData) != tt.trailing || (err == nil && d.A != tt.want) {
			t.Errorf("%q: %+v, %v", tt.in, d, err)
		}
	}
}
