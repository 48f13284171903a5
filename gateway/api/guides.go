package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/scrmgw/scrmgw/store"
)

// guideInput is the JSON a guide is written from. Active defaults to
// true. Its ids on channels are "identities"; the legacy fields
// (store.LegacyGuideIDFields: "wecom_userid", ...) are read as the
// identity on their channel's default instance, in Legacy.
type guideInput struct {
	ID         string          `json:"id"`
	StoreID    string          `json:"store_id"`
	Name       string          `json:"name"`
	Identities []identityInput `json:"identities"`
	Capacity   int             `json:"capacity"`
	Active     *bool           `json:"active"`
	// Legacy holds the legacy fields given, by field.
	Legacy map[string]*string `json:"-"`
}

// identityInput is one of a guide's ids on a channel instance.
type identityInput struct {
	Channel    string `json:"channel"`
	ExternalID string `json:"external_id"`
}

// UnmarshalJSON reads the guide's fields and the legacy ones, refusing
// any other.
func (in *guideInput) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	in.Legacy = nil
	for _, f := range store.LegacyGuideIDFields {
		raw, ok := fields[f.Field]
		if !ok {
			continue
		}
		var v *string
		if err := json.Unmarshal(raw, &v); err != nil {
			return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeOf(""), Field: f.Field}
		}
		if in.Legacy == nil {
			in.Legacy = map[string]*string{}
		}
		in.Legacy[f.Field] = v
		delete(fields, f.Field)
	}
	rest, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	type plain guideInput
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	p.Legacy = in.Legacy
	*in = guideInput(p)
	return nil
}

// guideOf turns input into a guide, checked: the channels of its
// identities must be channel instances the gateway has (when the server
// knows them), and a legacy field must agree with an identity on its
// channel. A legacy field is accepted as before for a channel the gateway
// is not wired with (a staff list loaded before the channel is set up).
func (s *Server) guideOf(in guideInput) (store.Guide, error) {
	g := store.Guide{ID: in.ID, StoreID: in.StoreID, Name: in.Name, Capacity: in.Capacity, Active: in.Active == nil || *in.Active}
	var errs []error
	for _, id := range in.Identities {
		g.Identities = append(g.Identities, store.GuideIdentity{Channel: id.Channel, ExternalID: id.ExternalID})
	}
	for _, f := range store.LegacyGuideIDFields {
		v, ok := in.Legacy[f.Field]
		if !ok || v == nil {
			continue
		}
		if have := g.Identity(f.Channel); have != "" {
			if have != *v {
				errs = append(errs, &store.FieldError{Field: f.Field, Message: fmt.Sprintf("%q disagrees with the identity on %s, %q", *v, f.Channel, have)})
			}
			continue
		}
		g.Identities = append(g.Identities, store.GuideIdentity{Channel: f.Channel, ExternalID: *v})
		if *v == "" {
			errs = append(errs, &store.FieldError{Field: f.Field, Message: "must be 1-128 bytes when given"})
		}
	}
	if s.channels != nil {
		names := s.channels.Names()
		for i, id := range in.Identities {
			if id.Channel != "" && !slices.Contains(names, id.Channel) {
				field := fmt.Sprintf("identities[%d].channel", i)
				errs = append(errs, &store.FieldError{Field: field,
					Message: fmt.Sprintf("unknown channel %q: the gateway has %s", id.Channel, strings.Join(names, ", "))})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return g, errors.Join(err, g.Validate())
	}
	return g, g.Validate()
}
