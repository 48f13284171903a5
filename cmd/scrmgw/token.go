package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/app"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
)

const tokenUsage = `usage: scrmgw token create --name NAME [--brand B] [--read-only] [--resources members,workflows] [--expires 720h] [--phones]
       scrmgw token list
       scrmgw token revoke ID`

// tokenFlags are the flags of scrmgw token create.
type tokenFlags struct {
	name, brand, resources string
	readOnly, phones       bool
	expires                time.Duration
}

// runToken creates, lists or revokes API tokens straight in the database
// (no running gateway needed). create prints the token once; creations
// and revocations are in the audit trail as the command line's.
func runToken(ctx context.Context, cfg configs.Config, log *slog.Logger, args []string, f tokenFlags, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "scrmgw token: "+format+"\n", a...)
		return code
	}
	var in store.NewAPIToken
	var revoke int64
	switch args[0] {
	case "create":
		if len(args) != 1 || f.name == "" {
			return fail(2, "create needs --name and no arguments\n%s", tokenUsage)
		}
		in = store.NewAPIToken{Name: f.name, CanViewPhone: f.phones, ReadOnly: f.readOnly}
		if f.brand != "" {
			in.BrandID = &f.brand
		}
		if f.resources != "" {
			for _, r := range strings.Split(f.resources, ",") {
				in.Resources = append(in.Resources, strings.TrimSpace(r))
			}
			if err := api.CheckResources(in.Resources); err != nil {
				return fail(2, "--resources: %v", err)
			}
		}
		if f.expires < 0 {
			return fail(2, "--expires: want a positive duration such as 720h, got %s", f.expires)
		}
		if f.expires > 0 {
			at := time.Now().Add(f.expires)
			in.ExpiresAt = &at
		}
	case "list":
		if len(args) != 1 {
			return fail(2, "list takes no arguments\n%s", tokenUsage)
		}
	case "revoke":
		var err error
		if len(args) != 2 {
			return fail(2, "revoke needs the token's id\n%s", tokenUsage)
		}
		if revoke, err = strconv.ParseInt(args[1], 10, 64); err != nil || revoke < 1 {
			return fail(2, "revoke: want a token id (scrmgw token list), got %q", args[1])
		}
	default:
		return fail(2, "unknown subcommand %q\n%s", args[0], tokenUsage)
	}

	s, err := app.OpenStore(ctx, cfg, log)
	if err != nil {
		return fail(1, "%v", err)
	}
	defer s.Close()
	switch args[0] {
	case "create":
		plain, tok, err := s.CreateAPIToken(ctx, in)
		if errors.Is(err, store.ErrInvalid) {
			return fail(2, "%v", err)
		}
		if err != nil {
			return fail(1, "%v", err)
		}
		cliAudit(ctx, s, log, store.AuditTokenCreate, tok.ID)
		fmt.Fprintf(stderr, "token %d %q created; it is shown once, here:\n", tok.ID, tok.Name)
		fmt.Fprintln(stdout, plain)
	case "list":
		toks, err := s.APITokens(ctx)
		if err != nil {
			return fail(1, "%v", err)
		}
		printTokens(stdout, toks, time.Now())
	case "revoke":
		err := s.RevokeAPIToken(ctx, revoke)
		if errors.Is(err, store.ErrNotFound) {
			return fail(1, "no token %d", revoke)
		}
		if err != nil {
			return fail(1, "%v", err)
		}
		cliAudit(ctx, s, log, store.AuditTokenRevoke, revoke)
		fmt.Fprintf(stdout, "token %d revoked\n", revoke)
	}
	return 0
}

// cliAudit records a token change made on the command line.
func cliAudit(ctx context.Context, s *store.Store, log *slog.Logger, action string, id int64) {
	who := "scrmgw cli"
	if u, err := user.Current(); err == nil {
		who += " (user " + u.Username + ")"
	}
	e := store.AuditEntry{Actor: "cli", Action: action, Resource: api.ResourceTokens, ResourceIDs: "token=" + strconv.FormatInt(id, 10), UserAgent: who}
	if err := s.AppendAudit(ctx, []store.AuditEntry{e}); err != nil {
		log.Error("recording the token change in the audit trail", slog.Any("error", err))
	}
}

// printTokens lists tokens as a table: no secret is ever shown.
func printTokens(w io.Writer, toks []store.APIToken, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tBRAND\tSCOPE\tEXPIRES\tLAST USED\tSTATE")
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for i := range toks {
		t := api.TokenOut(&toks[i], now)
		brand := "(admin)"
		if t.Brand != nil {
			brand = *t.Brand
		}
		var scope []string
		if t.ReadOnly {
			scope = append(scope, "read-only")
		}
		if len(t.Resources) > 0 {
			scope = append(scope, strings.Join(t.Resources, ","))
		} else {
			scope = append(scope, "all resources")
		}
		if t.CanViewPhone {
			scope = append(scope, "phones")
		}
		state := "active"
		switch {
		case t.RevokedAt != nil:
			state = "revoked"
		case t.Expired:
			state = "expired"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, brand, strings.Join(scope, " "), when(t.ExpiresAt), when(t.LastUsedAt), state)
	}
	tw.Flush()
}
