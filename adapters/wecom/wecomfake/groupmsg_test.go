package wecomfake_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestGroupMsgListRefusals: get_groupmsg_list_v2 refuses what WeCom's
// document does not allow (a range over a month, an end before the start,
// a bad filter type or chat type, missing times; 40058, the fake's choice
// of code) and a bad cursor (50100), and answers a month without tasks
// with an empty list.
func TestGroupMsgListRefusals(t *testing.T) {
	f := wecomfake.New(t)
	u := f.URL() + wecomfake.PathGroupMsgListV2 + "?access_token=" + url.QueryEscape(token(t, f, f.ContactSecret()))
	now := time.Now().Unix()
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"over a month", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d}`, now-32*86400, now), wecomfake.CodeInvalidParameter},
		{"end before start", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d}`, now, now-60), wecomfake.CodeInvalidParameter},
		{"no times", `{"chat_type":"single"}`, wecomfake.CodeInvalidParameter},
		{"bad filter", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d,"filter_type":3}`, now-60, now), wecomfake.CodeInvalidParameter},
		{"bad chat type", fmt.Sprintf(`{"chat_type":"pair","start_time":%d,"end_time":%d}`, now-60, now), wecomfake.CodeInvalidParameter},
		{"bad cursor", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d,"cursor":"nope"}`, now-60, now), wecomfake.CodeInvalidCursor},
		{"unknown field", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d,"sender":"li"}`, now-60, now), wecomfake.CodeInvalidParameter},
		{"a month, empty", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d,"filter_type":0,"limit":100}`, now-31*86400, now), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := post(t, u, tc.body); a.Errcode != tc.code {
				t.Errorf("errcode = %d (%s), want %d", a.Errcode, a.Errmsg, tc.code)
			}
		})
	}
}
