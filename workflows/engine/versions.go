package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// ErrInvalid is wrapped by Put's errors about the workflow itself: a
// validation error list (errors.As a workflows.ErrorList for the details),
// a name or brand that does not match the request.
var ErrInvalid = errors.New("invalid workflow")

// Version is a stored workflow version.
type Version struct {
	Brand   string
	Name    string
	Version string
	// Created reports whether Put stored a new version (false: the same
	// content was stored before).
	Created bool
	// Enabled reports whether the workflow starts runs.
	Enabled  bool
	Workflow *workflows.Workflow
}

// triggerOf names a workflow's trigger as the store indexes it.
func triggerOf(w *workflows.Workflow) string {
	if w.Trigger.Schedule != nil {
		return "schedule"
	}
	return w.Trigger.Event
}

// Put validates a workflow and stores it as the current version of the
// brand's workflow name: new runs start on it, running ones stay on the
// version they started on. The YAML's name and entry.brand must be name
// and brand. A workflow put for the first time is disabled until Enable.
func (e *Engine) Put(ctx context.Context, brand, name string, yaml []byte) (*Version, error) {
	opts := e.loadOptions()
	// New versions only: a stored version that a channel's kinds would
	// refuse today keeps running the runs pinned to it.
	opts.MemberKinds = e.opts.MemberKinds
	opts.GroupKinds = e.opts.GroupKinds
	w, err := workflows.Load(name+".yaml", yaml, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if w.Name != name {
		return nil, fmt.Errorf("%w: the file is named %q, not %q", ErrInvalid, w.Name, name)
	}
	if w.Entry.Brand != brand {
		return nil, fmt.Errorf("%w: the workflow is for brand %q, not %q", ErrInvalid, w.Entry.Brand, brand)
	}
	for _, from := range w.Entry.CrossBrandFrom {
		if _, err := e.store.Brand(ctx, from); errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: entry.cross_brand_from: there is no brand %q", ErrInvalid, from)
		} else if err != nil {
			return nil, fmt.Errorf("checking brand %q: %w", from, err)
		}
	}
	v := &store.WorkflowVersion{BrandID: brand, Name: name, Version: w.Version, Source: string(yaml), CreatedAt: e.now()}
	head, created, err := e.store.PutWorkflowVersion(ctx, v, triggerOf(w))
	if err != nil {
		return nil, fmt.Errorf("storing workflow %s/%s: %w", brand, name, err)
	}
	e.versions.Store(versionKey(brand, name, w.Version), w)
	e.forget(brand)
	e.log.InfoContext(ctx, "workflow stored", "brand", brand, "workflow", name, "version", w.Version, "created", created)
	return &Version{Brand: brand, Name: name, Version: w.Version, Created: created, Enabled: head.Enabled, Workflow: w}, nil
}

// Enable lets a workflow start runs.
func (e *Engine) Enable(ctx context.Context, brand, name string) error {
	return e.setEnabled(ctx, brand, name, true)
}

// Disable stops a workflow from starting runs; its running runs go on.
func (e *Engine) Disable(ctx context.Context, brand, name string) error {
	return e.setEnabled(ctx, brand, name, false)
}

func (e *Engine) setEnabled(ctx context.Context, brand, name string, on bool) error {
	if err := e.store.SetWorkflowEnabled(ctx, brand, name, on); err != nil {
		return fmt.Errorf("setting workflow %s/%s enabled=%v: %w", brand, name, on, err)
	}
	e.forget(brand)
	return nil
}

// Retire retires a version of a workflow: its active runs end as exited,
// their pending wakes and steps are cancelled, and it starts no more runs
// (retiring the current version disables the workflow). It returns how
// many runs it ended.
func (e *Engine) Retire(ctx context.Context, brand, name, version string) (int64, error) {
	n, err := e.store.RetireWorkflowVersion(ctx, brand, name, version, "version retired", e.now())
	if err != nil {
		return 0, fmt.Errorf("retiring %s/%s version %s: %w", brand, name, version, err)
	}
	e.forget(brand)
	e.log.InfoContext(ctx, "workflow version retired", "brand", brand, "workflow", name, "version", version, "runs_ended", n)
	return n, nil
}

func (e *Engine) loadOptions() workflows.Options {
	return workflows.Options{Templates: e.opts.Templates, Channels: adapters.Kinds(e.opts.Channels.Names())}
}

func versionKey(brand, name, version string) string { return brand + "\x00" + name + "\x00" + version }

// workflow returns a stored version, loaded once per process (versions
// never change).
func (e *Engine) workflow(ctx context.Context, brand, name, version string) (*workflows.Workflow, error) {
	key := versionKey(brand, name, version)
	if w, ok := e.versions.Load(key); ok {
		return w.(*workflows.Workflow), nil
	}
	v, err := e.store.WorkflowVersion(ctx, brand, name, version)
	if err != nil {
		return nil, fmt.Errorf("loading workflow %s/%s version %s: %w", brand, name, version, err)
	}
	w, err := workflows.Load(name+".yaml", []byte(v.Source), e.loadOptions())
	if err != nil {
		// The templates it was checked against changed since.
		return nil, fmt.Errorf("loading workflow %s/%s version %s: %w: %w", brand, name, version, err, errPermanent)
	}
	e.versions.Store(key, w)
	return w, nil
}

// enabledWorkflows returns the brand's enabled workflows, cached for
// CacheTTL.
func (e *Engine) enabledWorkflows(ctx context.Context, brand string) ([]store.Workflow, error) {
	e.mu.Lock()
	c, ok := e.enabled[brand]
	e.mu.Unlock()
	if ok && time.Since(c.at) < e.opts.CacheTTL {
		return c.workflows, nil
	}
	ws, err := e.store.Workflows(ctx, store.WorkflowFilter{Brand: brand, EnabledOnly: true})
	if err != nil {
		return nil, fmt.Errorf("listing enabled workflows: %w", err)
	}
	e.mu.Lock()
	e.enabled[brand] = enabledCache{at: time.Now(), workflows: ws}
	e.mu.Unlock()
	return ws, nil
}

func (e *Engine) forget(brand string) {
	e.mu.Lock()
	delete(e.enabled, brand)
	e.mu.Unlock()
}
