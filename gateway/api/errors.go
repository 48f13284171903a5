package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// Error codes of the stable error shape {"error": {"code", "message", "details"}}.
const (
	CodeInvalidJSON     = "invalid_json"
	CodeInvalidArgument = "invalid_argument"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeTooLarge        = "payload_too_large"
	CodeUnsupported     = "unsupported_media_type"
	CodeInternal        = "internal"
)

// Detail points at one bad field, in one row of a bulk request when Row is
// set.
type Detail struct {
	Row     *int   `json:"row,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// apiError is an error the API answers with.
type apiError struct {
	Status  int      `json:"-"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []Detail `json:"details,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalidFields is the 400 of a request's field problems (at least
// one), its message the first's.
func invalidFields(details []Detail) *apiError {
	e := newError(http.StatusBadRequest, CodeInvalidArgument, "%s: %s", details[0].Field, details[0].Message)
	e.Details = details
	return e
}

func abort(c *gin.Context, e *apiError) {
	if _, ok := c.Get(auditNoteKey); !ok {
		c.Set(auditNoteKey, e.Code)
	}
	c.AbortWithStatusJSON(e.Status, gin.H{"error": e})
}

// fail answers with the API error err maps onto; unexpected errors are
// logged and answered with a generic 500.
func (s *Server) fail(c *gin.Context, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		abort(c, ae)
		return
	}
	var re *store.RowError
	row := -1
	if errors.As(err, &re) {
		row = re.Row
	}
	switch {
	case errors.Is(err, store.ErrInvalid):
		e := newError(http.StatusBadRequest, CodeInvalidArgument, "%s", err.Error())
		e.Details = fieldDetails(err, row)
		abort(c, e)
	case errors.Is(err, store.ErrNotFound):
		abort(c, newError(http.StatusNotFound, CodeNotFound, "not found"))
	case errors.Is(err, store.ErrConflict):
		abort(c, newError(http.StatusConflict, CodeConflict, "%s", conflictMessage(err)))
	default:
		s.log.ErrorContext(c.Request.Context(), "api request failed", slog.String("route", c.FullPath()), slog.Any("error", err))
		abort(c, newError(http.StatusInternalServerError, CodeInternal, "internal error"))
	}
}

// conflictMessage keeps the first, human part of a conflict error and
// drops the driver's text.
func conflictMessage(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "UNIQUE constraint") || strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicated key") {
		return "a record with the same id or channel id already exists"
	}
	if strings.Contains(msg, "FOREIGN KEY") || strings.Contains(msg, "SQLSTATE 23503") {
		return "the record refers to, or is referred to by, other records"
	}
	return msg
}

// fieldDetails flattens joined FieldErrors into details.
func fieldDetails(err error, row int) []Detail {
	var out []Detail
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var fe *store.FieldError
		if x, ok := e.(*store.FieldError); ok {
			fe = x
		}
		if fe != nil {
			d := Detail{Field: fe.Field, Message: fe.Message}
			if row >= 0 {
				r := row
				d.Row = &r
			}
			out = append(out, d)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// decodeJSON reads a JSON body strictly: size-limited, unknown fields and
// trailing data refused, with errors a caller can act on.
func decodeJSON(c *gin.Context, limit int64, v any) *apiError {
	if ct := c.ContentType(); ct != "" && ct != "application/json" {
		return newError(http.StatusUnsupportedMediaType, CodeUnsupported, "content type %q is not supported; send application/json", ct)
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return newError(http.StatusBadRequest, CodeInvalidJSON, "unexpected data after the JSON value")
		}
		return nil
	}
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds %d bytes", maxErr.Limit)
	case errors.Is(err, io.EOF):
		return newError(http.StatusBadRequest, CodeInvalidJSON, "request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return newError(http.StatusBadRequest, CodeInvalidJSON, "request body ends in the middle of the JSON value")
	case errors.As(err, &syntaxErr):
		return newError(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return newError(http.StatusBadRequest, CodeInvalidJSON, "want a JSON %s, got %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		e := newError(http.StatusBadRequest, CodeInvalidArgument, "field %q: want %s, got %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		e.Details = []Detail{{Field: field, Message: fmt.Sprintf("want %s, got %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)}}
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return newError(http.StatusBadRequest, CodeInvalidArgument, "unknown field %s", name)
	}
	return newError(http.StatusBadRequest, CodeInvalidJSON, "reading JSON body: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "float64", "float32", "int", "int64", "int32", "uint", "uint64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "struct", "map", "ptr":
		return "an object"
	}
	return goKind
}
