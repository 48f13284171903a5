package assign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/geo"
)

// Binding reasons.
const (
	ReasonState   = "state"
	ReasonNearest = "nearest"
	ReasonPool    = "online_pool"
	ReasonManual  = "manual"
	ReasonInherit = "inherited"
)

// ErrUnassigned means no guide could be found: the member waits in the
// unassigned queue (no current binding) until one is.
var ErrUnassigned = errors.New("no guide available")

// Request says whom to bind and what is known of them.
type Request struct {
	MemberID int64
	Brand    string
	// Lat and Lng locate the member (a shared location, their profile).
	Lat, Lng *float64
	// StoreID or GuideID come from the QR code the member scanned; they win
	// over the location.
	StoreID string
	GuideID string
	// MaxDistanceKm bounds the nearest-store walk; 0 uses the default.
	MaxDistanceKm float64
	// Rebind ends a current binding and binds anew (a manual
	// reassignment); without it a member already bound keeps their guide.
	Rebind bool
	Reason string
	// PoolOnly binds to the brand's online pool only, skipping the QR
	// code's store or guide and the location; NoPool never falls back
	// to the pool.
	PoolOnly bool
	NoPool   bool
}

// Options configure the Assigner.
type Options struct {
	// MaxDistanceKm is the default limit of the nearest-store walk. Default 50.
	MaxDistanceKm float64
	// MaxStores is how many stores the walk tries before falling back.
	// Default 20.
	MaxStores int
	// OnlinePools names, per brand, the store whose guides serve members
	// no nearby store can take (the brand's online guide pool).
	OnlinePools map[string]string
	// Transferers move a leaving guide's contacts on their channel
	// instances (each WeCom corp): the instances the guide has an id on.
	Transferers []Transferer
	Logger      *slog.Logger
}

// Assigner binds members to guides.
type Assigner struct {
	store *store.Store
	index *geo.Index
	opts  Options
	log   *slog.Logger

	mu       sync.Mutex // serialises syncs
	lastSync time.Time
}

// New builds the store index from the database.
func New(ctx context.Context, s *store.Store, opts Options) (*Assigner, error) {
	if opts.MaxDistanceKm <= 0 {
		opts.MaxDistanceKm = 50
	}
	if opts.MaxStores <= 0 {
		opts.MaxStores = 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Assigner{store: s, index: geo.New(), opts: opts, log: opts.Logger}
	if err := a.Rebuild(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func site(rs store.RetailStore) geo.Site {
	return geo.Site{ID: rs.ID, Lat: rs.Lat, Lng: rs.Lng, Brands: rs.BrandIDs, Active: rs.Active}
}

// Rebuild reloads every store into a fresh index.
func (a *Assigner) Rebuild(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rebuild(ctx)
}

func (a *Assigner) rebuild(ctx context.Context) error {
	started := time.Now()
	var sites []geo.Site
	after := ""
	for {
		page, err := a.store.StoresChangedSince(ctx, time.Time{}, after, 1000)
		if err != nil {
			return fmt.Errorf("loading stores: %w", err)
		}
		for _, rs := range page {
			sites = append(sites, site(rs))
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	if err := a.index.Build(sites); err != nil {
		return fmt.Errorf("building store index: %w", err)
	}
	a.lastSync = started
	a.log.Info("store index built", slog.Int("stores", len(sites)), slog.Duration("took", time.Since(started)))
	return nil
}

// Sync applies stores changed since the last sync (other replicas'
// writes) and drops deleted ones.
func (a *Assigner) Sync(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	started := time.Now()
	// Overlap a little: clocks of replicas and the database differ.
	since := a.lastSync.Add(-time.Minute)
	after := ""
	for {
		page, err := a.store.StoresChangedSince(ctx, since, after, 1000)
		if err != nil {
			return fmt.Errorf("syncing stores: %w", err)
		}
		for _, rs := range page {
			if err := a.index.Upsert(site(rs)); err != nil {
				a.log.Warn("store not indexed", slog.String("store_id", rs.ID), slog.Any("error", err))
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	ids, err := a.store.StoreIDs(ctx)
	if err != nil {
		return fmt.Errorf("syncing stores: %w", err)
	}
	if a.index.Len() > len(ids) {
		// A store was deleted: rebuilding is simplest and rare.
		return a.rebuild(ctx)
	}
	a.lastSync = started
	return nil
}

// Refresh re-reads the given stores into the index at once (after a write
// through this replica's API).
func (a *Assigner) Refresh(ctx context.Context, ids ...string) {
	for _, id := range ids {
		rs, err := a.store.RetailStore(ctx, id, "")
		switch {
		case errors.Is(err, store.ErrNotFound):
			a.index.Remove(id)
		case err != nil:
			a.log.Warn("refreshing store index", slog.String("store_id", id), slog.Any("error", err))
		default:
			if err := a.index.Upsert(site(*rs)); err != nil {
				a.log.Warn("store not indexed", slog.String("store_id", id), slog.Any("error", err))
			}
		}
	}
}

// Nearest returns up to n active stores carrying brand within maxKm
// (0: the default limit), nearest first.
func (a *Assigner) Nearest(lat, lng float64, brand string, maxKm float64, n int) []geo.Hit {
	if maxKm <= 0 {
		maxKm = a.opts.MaxDistanceKm
	}
	return a.index.NearestN(lat, lng, brand, maxKm, n)
}

// Assign binds a member per the request and returns the binding. A member
// already bound for the brand keeps their binding unless Rebind is set.
func (a *Assigner) Assign(ctx context.Context, req Request) (*store.Binding, error) {
	if req.Lat != nil || req.Lng != nil {
		if req.Lat == nil || req.Lng == nil {
			return nil, &store.FieldError{Field: "lat", Message: "give both lat and lng"}
		}
		if err := store.ValidateCoordinates(*req.Lat, *req.Lng); err != nil {
			return nil, err
		}
	}
	if _, err := a.store.Brand(ctx, req.Brand); errors.Is(err, store.ErrNotFound) {
		return nil, &store.FieldError{Field: "brand", Message: fmt.Sprintf("unknown brand %q", req.Brand)}
	} else if err != nil {
		return nil, err
	}
	m, err := a.store.Member(ctx, req.MemberID, "")
	if err != nil {
		return nil, err
	}
	for _, b := range m.Bindings {
		if b.BrandID != req.Brand {
			continue
		}
		if !req.Rebind {
			return &b, nil
		}
		if err := a.store.EndBinding(ctx, b.ID); err != nil {
			return nil, fmt.Errorf("ending binding: %w", err)
		}
	}
	reason := func(def string) string {
		if req.Reason != "" {
			return req.Reason
		}
		return def
	}
	if req.PoolOnly {
		req.GuideID, req.StoreID, req.Lat, req.Lng = "", "", nil, nil
	}
	if req.GuideID != "" {
		g, err := a.store.Guide(ctx, req.GuideID, req.Brand)
		if errors.Is(err, store.ErrNotFound) {
			return nil, &store.FieldError{Field: "guide_id", Message: fmt.Sprintf("no guide %q of a store carrying %s", req.GuideID, req.Brand)}
		}
		if err != nil {
			return nil, err
		}
		if !g.Active {
			return nil, &store.FieldError{Field: "guide_id", Message: fmt.Sprintf("guide %q is not active", g.ID)}
		}
		b, _, err := a.store.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: req.Brand, GuideID: g.ID, StoreID: g.StoreID, Reason: reason(ReasonState)})
		return b, err
	}
	if req.StoreID != "" {
		if _, err := a.store.RetailStore(ctx, req.StoreID, req.Brand); errors.Is(err, store.ErrNotFound) {
			return nil, &store.FieldError{Field: "store_id", Message: fmt.Sprintf("no store %q carrying %s", req.StoreID, req.Brand)}
		} else if err != nil {
			return nil, err
		}
		if b, err := a.bindInStore(ctx, m.ID, req.Brand, req.StoreID, reason(ReasonState), 0); !errors.Is(err, ErrUnassigned) {
			return b, err
		}
		// The store is full: fall through to the nearest others.
	}
	if req.Lat != nil {
		maxKm := req.MaxDistanceKm
		if maxKm <= 0 {
			maxKm = a.opts.MaxDistanceKm
		}
		for _, h := range a.index.NearestN(*req.Lat, *req.Lng, req.Brand, maxKm, a.opts.MaxStores) {
			b, err := a.bindInStore(ctx, m.ID, req.Brand, h.ID, reason(ReasonNearest), h.DistM)
			if !errors.Is(err, ErrUnassigned) {
				return b, err
			}
		}
	}
	if pool := a.opts.OnlinePools[req.Brand]; pool != "" && !req.NoPool {
		if b, err := a.bindInStore(ctx, m.ID, req.Brand, pool, reason(ReasonPool), 0); !errors.Is(err, ErrUnassigned) {
			return b, err
		}
	}
	return nil, ErrUnassigned
}

// bindInStore binds the member to the least-loaded guide of a store with
// room, retrying the next guide when a concurrent assignment filled one.
func (a *Assigner) bindInStore(ctx context.Context, memberID int64, brand, storeID, reason string, distM float64) (*store.Binding, error) {
	guides, err := a.store.AssignableGuides(ctx, storeID)
	if err != nil {
		return nil, err
	}
	for _, g := range guides {
		b, _, err := a.store.BindWithin(ctx, &store.Binding{MemberID: memberID, BrandID: brand, GuideID: g.ID,
			StoreID: storeID, Reason: reason, DistanceM: distM})
		if errors.Is(err, store.ErrGuideFull) {
			continue
		}
		return b, err
	}
	return nil, ErrUnassigned
}
