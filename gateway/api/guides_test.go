package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestGuideIdentities: a guide's ids are "identities" on the gateway's
// channel instances; the legacy wecom_userid and dingtalk_userid are the
// default instances' ids, read and written (also for a channel the
// gateway is not wired with); an identity on an unknown channel, two ids
// on one channel, a disagreeing legacy field and an id another guide has
// are refused, the last naming that guide.
func TestGuideIdentities(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		gin.SetMode(gin.TestMode)
		r := gin.New()
		// DingTalk is not wired: its legacy field is still taken.
		chs := adapters.SpecList{{Name: "wecom"}, {Name: "wecom:north"}, {Name: "chirp"}}
		api.New(api.Options{Store: s, AdminToken: adminToken, MaxBodyBytes: 64 << 10, MaxBulkBodyBytes: 1 << 20, Channels: chs}).Mount(r)
		srv := httptest.NewServer(openapitest.Check(t, r))
		t.Cleanup(srv.Close)
		c := client{t: t, url: srv.URL}
		seed(c)

		g := c.must(201, "POST", "/api/v1/guides", adminToken,
			`{"id":"g1","store_id":"sh-1","name":"Li","identities":[{"channel":"wecom:north","external_id":"north-li"},{"channel":"chirp","external_id":"c-li"}],"wecom_userid":"li"}`)
		if got := identitiesOf(g); got != "chirp=c-li,wecom=li,wecom:north=north-li" || g["wecom_userid"] != "li" || g["dingtalk_userid"] != nil {
			t.Errorf("created guide: %s %v", got, g)
		}
		// A legacy client replaces the ids with its fields.
		g = c.must(200, "PUT", "/api/v1/guides/g1", adminToken, `{"store_id":"sh-1","name":"Li","dingtalk_userid":"staff-li"}`)
		if got := identitiesOf(g); got != "dingtalk=staff-li" || g["dingtalk_userid"] != "staff-li" || g["wecom_userid"] != nil {
			t.Errorf("put guide: %s %v", got, g)
		}
		for _, tc := range []struct {
			body        string
			status      int
			code, words string
		}{
			{`{"id":"g2","store_id":"sh-1","name":"Wu","identities":[{"channel":"wecom:south","external_id":"wu"}]}`, 400, api.CodeInvalidArgument,
				`identities[0].channel: unknown channel "wecom:south": the gateway has wecom, wecom:north, chirp`},
			{`{"id":"g2","store_id":"sh-1","name":"Wu","identities":[{"channel":"chirp","external_id":"a"},{"channel":"chirp","external_id":"b"}]}`, 400, api.CodeInvalidArgument,
				"one per channel"},
			{`{"id":"g2","store_id":"sh-1","name":"Wu","identities":[{"channel":"wecom","external_id":"wu"}],"wecom_userid":"wu2"}`, 400, api.CodeInvalidArgument,
				`wecom_userid: "wu2" disagrees with the identity on wecom, "wu"`},
			{`{"id":"g2","store_id":"sh-1","name":"Wu","identities":[{"channel":"chirp","external_id":""}]}`, 400, api.CodeInvalidArgument,
				"identities[0].external_id: must be 1-128 bytes"},
			{`{"id":"g2","store_id":"sh-1","name":"Wu","identities":[{"channel":"dingtalk","external_id":"staff-wu"}]}`, 400, api.CodeInvalidArgument,
				`identities[0].channel: unknown channel "dingtalk"`},
			{`{"id":"g2","store_id":"sh-1","name":"Wu","dingtalk_userid":"staff-li"}`, 409, api.CodeConflict,
				`dingtalk id "staff-li" is guide "g1"'s`},
			{`{"id":"g2","store_id":"sh-1","name":"Wu","qq_userid":"1"}`, 400, "", `unknown field "qq_userid"`},
		} {
			got, out := c.do("POST", "/api/v1/guides", adminToken, tc.body)
			if got != tc.status || (tc.code != "" && errCode(out) != tc.code) || !strings.Contains(errMessage(out), tc.words) {
				t.Errorf("%s: %d %v, want %d %s %q", tc.body, got, out, tc.status, tc.code, tc.words)
			}
		}
		c.must(201, "POST", "/api/v1/guides", adminToken, `{"id":"g2","store_id":"sh-1","name":"Wu","identities":[{"channel":"chirp","external_id":"c-li"}]}`)
	})
}

// identitiesOf lists a guide's identities as channel=id.
func identitiesOf(g map[string]any) string {
	var parts []string
	ids, _ := g["identities"].([]any)
	for _, v := range ids {
		m, _ := v.(map[string]any)
		ch, _ := m["channel"].(string)
		id, _ := m["external_id"].(string)
		parts = append(parts, ch+"="+id)
	}
	return strings.Join(parts, ",")
}
