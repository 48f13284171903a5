package adapters

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// FreshTimestamp checks a WeChat-family callback's timestamp (Unix
// seconds, in the query) against the replay window: within maxSkew of now
// (any time when maxSkew is 0). When it is not, it has answered w: 400 for
// a timestamp that is no number, 403 for one outside the window.
func FreshTimestamp(w http.ResponseWriter, ts string, now time.Time, maxSkew time.Duration) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		http.Error(w, "bad timestamp", http.StatusBadRequest)
		return false
	}
	if maxSkew > 0 {
		skew := now.Sub(time.Unix(sec, 0))
		if skew > maxSkew || skew < -maxSkew {
			http.Error(w, "timestamp outside the allowed window", http.StatusForbidden)
			return false
		}
	}
	return true
}

// ReadCallbackBody reads a callback's body, at most max bytes. When it
// cannot, it has answered w: 413 for a body over max, 400 for one that
// could not be read.
func ReadCallbackBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return nil, false
		}
		http.Error(w, "reading body", http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

// RejectCallback refuses a WeChat-family callback that is not a valid
// one for the account, logged as refused: 403 when err is one of
// forbidden (a bad signature, another account's), else 400.
func RejectCallback(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error, forbidden ...error) {
	status := http.StatusBadRequest
	for _, f := range forbidden {
		if errors.Is(err, f) {
			status = http.StatusForbidden
		}
	}
	log.Warn("callback refused", slog.Int("status", status), slog.String("remote", r.RemoteAddr), slog.Any("error", err))
	http.Error(w, http.StatusText(status), status)
}

// RecordAndAnswer records a WeChat-family callback's delivery and answers
// "success", the vendors' acknowledgement; a delivery that could not be
// recorded answers 503 so the vendor sends it again. A nil in (nothing
// to record) is acknowledged at once.
func RecordAndAnswer(w http.ResponseWriter, r *http.Request, rec Recorder, log *slog.Logger, in *Inbound) {
	if in != nil {
		if err := rec.Record(r.Context(), in); err != nil {
			log.Error("recording callback", slog.String("kind", in.Kind), slog.String("event", in.Event), slog.Any("error", err))
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	io.WriteString(w, "success")
}
