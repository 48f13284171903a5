package store

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"
)

// ErrInvalid is wrapped by every FieldError.
var ErrInvalid = errors.New("invalid")

// FieldError says which field of an input is wrong and why.
type FieldError struct {
	// Field is the JSON name of the field, e.g. "lat" or "brands[1]".
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ValidateID checks an external id (brand, store, guide): 1–64 letters,
// digits, '.', '_', ':' or '-', starting with a letter or digit.
func ValidateID(field, id string) error {
	if id == "" {
		return invalid(field, "is required")
	}
	if !idPattern.MatchString(id) {
		return invalid(field, "%q is not a valid id (1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit)", id)
	}
	return nil
}

func requireText(field, v string, max int) error {
	if v == "" {
		return invalid(field, "is required")
	}
	return limitText(field, v, max)
}

func limitText(field, v string, max int) error {
	if n := len([]rune(v)); n > max {
		return invalid(field, "is %d characters long, at most %d allowed", n, max)
	}
	return nil
}

// Validate checks a brand before it is written.
func (b *Brand) Validate() error {
	return errors.Join(ValidateID("id", b.ID), requireText("name", b.Name, 200))
}

// ValidateCoordinates checks WGS-84 degrees; (0,0) is refused because it is
// what a missing location decodes to.
func ValidateCoordinates(lat, lng float64) error {
	var errs []error
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		errs = append(errs, invalid("lat", "%v is out of range [-90, 90]", lat))
	}
	if math.IsNaN(lng) || lng < -180 || lng > 180 {
		errs = append(errs, invalid("lng", "%v is out of range [-180, 180]", lng))
	}
	if lat == 0 && lng == 0 {
		errs = append(errs, invalid("lat", "(0, 0) is not a store location; a location is required"))
	}
	return errors.Join(errs...)
}

// DefaultTimeZone is used for stores that do not name one.
const DefaultTimeZone = "Asia/Shanghai"

// Validate checks a store before it is written (brand existence is checked
// by the write itself).
func (s *RetailStore) Validate() error {
	errs := []error{ValidateID("id", s.ID), requireText("name", s.Name, 200), ValidateCoordinates(s.Lat, s.Lng),
		limitText("address", s.Address, 500), limitText("opening_hours", s.OpeningHours, 200)}
	if s.Distributor != "" {
		errs = append(errs, ValidateID("distributor", s.Distributor))
	}
	if s.TimeZone == "" {
		s.TimeZone = DefaultTimeZone
	}
	if _, err := time.LoadLocation(s.TimeZone); err != nil {
		errs = append(errs, invalid("time_zone", "unknown time zone %q (want an IANA name such as Asia/Shanghai)", s.TimeZone))
	}
	if len(s.BrandIDs) == 0 {
		errs = append(errs, invalid("brands", "a store carries at least one brand"))
	}
	seen := make(map[string]bool, len(s.BrandIDs))
	for i, b := range s.BrandIDs {
		if err := ValidateID(fmt.Sprintf("brands[%d]", i), b); err != nil {
			errs = append(errs, err)
		} else if seen[b] {
			errs = append(errs, invalid(fmt.Sprintf("brands[%d]", i), "brand %q listed twice", b))
		}
		seen[b] = true
	}
	return errors.Join(errs...)
}

// Validate checks a guide before it is written.
func (g *Guide) Validate() error {
	errs := []error{ValidateID("id", g.ID), ValidateID("store_id", g.StoreID), requireText("name", g.Name, 200)}
	if g.Capacity < 0 {
		errs = append(errs, invalid("capacity", "must not be negative, got %d", g.Capacity))
	}
	errs = append(errs, validateIdentities(g.Identities)...)
	return errors.Join(errs...)
}
