package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/app"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
)

// liveFileSession is a session file: the body of POST
// /api/v1/live-sessions.
type liveFileSession struct {
	ID       string    `json:"id"`
	StoreID  string    `json:"store_id"`
	Title    string    `json:"title"`
	URL      string    `json:"url"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
}

// runLive schedules a live session (the running workers' sweep announces
// it to its members within a minute or two) or prints a session's funnel.
func runLive(ctx context.Context, cfg configs.Config, log *slog.Logger, args []string, brand, file string, stdout, stderr io.Writer) int {
	s, err := app.OpenStore(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw live: %v\n", err)
		return 1
	}
	defer s.Close()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if args[0] == "funnel" {
		l, err := s.LiveSession(ctx, brand, args[1])
		if errors.Is(err, store.ErrNotFound) {
			fmt.Fprintf(stderr, "scrmgw live: brand %s has no live session %q\n", brand, args[1])
			return 1
		}
		if err != nil {
			fmt.Fprintf(stderr, "scrmgw live: %v\n", err)
			return 1
		}
		f, err := s.LiveFunnel(ctx, l.ID)
		if err != nil {
			fmt.Fprintf(stderr, "scrmgw live: %v\n", err)
			return 1
		}
		if f == nil {
			f = []store.LiveStoreFunnel{}
		}
		enc.Encode(map[string]any{"session": l, "stores": f})
		return 0
	}
	if args[0] == "cancel" || args[0] == "edit" {
		return changeLive(ctx, s, args, brand, file, enc, stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw live: %v\n", err)
		return 1
	}
	var in liveFileSession
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		fmt.Fprintf(stderr, "scrmgw live: %s: %v\n", file, err)
		return 2
	}
	l := &store.LiveSession{Key: in.ID, BrandID: brand, StoreID: in.StoreID, Title: in.Title, URL: in.URL, StartsAt: in.StartsAt, EndsAt: in.EndsAt}
	fresh, err := s.CreateLiveSession(ctx, l)
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(stderr, "scrmgw live: %s: %v\n", file, err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw live: %v\n", err)
		return 1
	}
	if !fresh {
		fmt.Fprintf(stderr, "scrmgw live: session %s was scheduled before; unchanged\n", l.Key)
	}
	enc.Encode(l)
	return 0
}

// liveFileEdit is an edit file: the body of PATCH
// /api/v1/live-sessions/{id}.
type liveFileEdit struct {
	Title    *string    `json:"title"`
	URL      *string    `json:"url"`
	StartsAt *time.Time `json:"starts_at"`
	EndsAt   *time.Time `json:"ends_at"`
}

// changeLive edits or cancels a session; the running workers' sweep
// announces it to the session's members again (an edit) or tells them it
// is cancelled, which ends their invitations.
func changeLive(ctx context.Context, s *store.Store, args []string, brand, file string, enc *json.Encoder, stderr io.Writer) int {
	var l *store.LiveSession
	var err error
	if args[0] == "cancel" {
		var fresh bool
		l, fresh, err = s.CancelLiveSession(ctx, brand, args[1], time.Now())
		if err == nil && !fresh {
			fmt.Fprintf(stderr, "scrmgw live: session %s was cancelled before; unchanged\n", l.Key)
		}
	} else {
		b, rerr := os.ReadFile(file)
		if rerr != nil {
			fmt.Fprintf(stderr, "scrmgw live: %v\n", rerr)
			return 1
		}
		var in liveFileEdit
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			fmt.Fprintf(stderr, "scrmgw live: %s: %v\n", file, err)
			return 2
		}
		l, err = s.UpdateLiveSession(ctx, brand, args[1], store.LiveEdit{Title: in.Title, URL: in.URL, StartsAt: in.StartsAt, EndsAt: in.EndsAt}, time.Now())
	}
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(stderr, "scrmgw live: brand %s has no live session %q\n", brand, args[1])
		return 1
	}
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) {
		fmt.Fprintf(stderr, "scrmgw live: %s: %v\n", args[1], err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw live: %v\n", err)
		return 1
	}
	enc.Encode(l)
	return 0
}
