package wechatoa

import (
	"context"
	"fmt"
	"net/url"

	"github.com/scrmgw/scrmgw/adapters"
)

// LookupContact describes a follower (user/info): their UnionID, which
// joins them with the same person on WeCom, when the account is bound to
// the brand's WeChat Open Platform account. WeChat no longer gives
// followers' nicknames.
func (c *Client) LookupContact(ctx context.Context, openID string) (*adapters.Contact, error) {
	var out struct {
		apiError
		Subscribe int    `json:"subscribe"`
		OpenID    string `json:"openid"`
		UnionID   string `json:"unionid"`
		Remark    string `json:"remark"`
	}
	q := url.Values{"openid": {openID}, "lang": {"zh_CN"}}
	if err := c.call(ctx, "/cgi-bin/user/info", q, nil, &out); err != nil {
		return nil, fmt.Errorf("getting follower info: %w", err)
	}
	return &adapters.Contact{ExternalID: openID, UnionID: out.UnionID, Name: out.Remark}, nil
}
