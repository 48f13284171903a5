package wecom

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/silenceper/wechat/v2/util"

	"github.com/scrmgw/scrmgw/adapters"
)

// Acquisition links (获客助手): a link that adds one of some employees,
// drawing on the corp's quota of customers added through links. A link
// handed out with ?customer_channel=<state> brings the state back in the
// add_external_contact callback's State, as a contact way does.

// Limits of acquisition links (document 97297; not verified).
const (
	maxLinkNameRunes   = 30
	maxLinkUsers       = 500
	maxCustomerChannel = 64
)

// AcquisitionLink is an acquisition link.
type AcquisitionLink struct {
	ID      string
	Name    string
	URL     string
	Created time.Time
	Users   []string
}

type linkRange struct {
	UserList       []string `json:"user_list,omitempty"`
	DepartmentList []int    `json:"department_list,omitempty"`
}

type createLinkRequest struct {
	LinkName   string    `json:"link_name"`
	Range      linkRange `json:"range"`
	SkipVerify bool      `json:"skip_verify"`
}

type linkBody struct {
	LinkID     string `json:"link_id"`
	LinkName   string `json:"link_name"`
	URL        string `json:"url"`
	CreateTime int64  `json:"create_time"`
}

type createLinkResponse struct {
	util.CommonError
	Link linkBody `json:"link"`
}

// CreateAcquisitionLink creates a link to users that adds them without
// verification (externalcontact/customer_acquisition/create_link).
func (a *API) CreateAcquisitionLink(ctx context.Context, name string, users []string) (*AcquisitionLink, error) {
	const op = "creating acquisition link"
	if n := utf8.RuneCountInString(name); n == 0 || n > maxLinkNameRunes {
		return nil, invalidRequest(op, "link name %q: want 1 to %d characters", name, maxLinkNameRunes)
	}
	if err := checkIDs(op, "userids", users, maxLinkUsers); err != nil {
		return nil, err
	}
	var res createLinkResponse
	if err := a.post(ctx, a.contTok, op, "externalcontact/customer_acquisition/create_link",
		createLinkRequest{LinkName: name, Range: linkRange{UserList: users}, SkipVerify: true}, &res); err != nil {
		return nil, err
	}
	l := &AcquisitionLink{ID: res.Link.LinkID, Name: res.Link.LinkName, URL: res.Link.URL, Users: users}
	if res.Link.CreateTime > 0 {
		l.Created = time.Unix(res.Link.CreateTime, 0).UTC()
	}
	return l, nil
}

type listLinksRequest struct {
	Limit  int    `json:"limit"`
	Cursor string `json:"cursor,omitempty"`
}

type listLinksResponse struct {
	util.CommonError
	LinkIDList []string `json:"link_id_list"`
	NextCursor string   `json:"next_cursor"`
}

// AcquisitionLinkIDs pages through the corp's links, 100 at a time
// (externalcontact/customer_acquisition/list_link).
func (a *API) AcquisitionLinkIDs(ctx context.Context, cursor string) (ids []string, next string, err error) {
	var res listLinksResponse
	if err := a.post(ctx, a.contTok, "listing acquisition links", "externalcontact/customer_acquisition/list_link",
		listLinksRequest{Limit: 100, Cursor: cursor}, &res); err != nil {
		return nil, "", err
	}
	return res.LinkIDList, res.NextCursor, nil
}

type getLinkResponse struct {
	util.CommonError
	Link       linkBody  `json:"link"`
	Range      linkRange `json:"range"`
	SkipVerify bool      `json:"skip_verify"`
}

// AcquisitionLink describes a link (externalcontact/customer_acquisition/get).
func (a *API) AcquisitionLink(ctx context.Context, id string) (*AcquisitionLink, error) {
	op := "getting acquisition link " + id
	if id == "" {
		return nil, invalidRequest(op, "no link id")
	}
	var res getLinkResponse
	if err := a.post(ctx, a.contTok, op, "externalcontact/customer_acquisition/get", struct {
		LinkID string `json:"link_id"`
	}{id}, &res); err != nil {
		return nil, err
	}
	l := &AcquisitionLink{ID: id, Name: res.Link.LinkName, URL: res.Link.URL, Users: res.Range.UserList}
	if res.Link.CreateTime > 0 {
		l.Created = time.Unix(res.Link.CreateTime, 0).UTC()
	}
	return l, nil
}

type quotaResponse struct {
	util.CommonError
	Total     int `json:"total"`
	Balance   int `json:"balance"`
	QuotaList []struct {
		ExpireDate int64 `json:"expire_date"`
		Balance    int   `json:"balance"`
	} `json:"quota_list"`
}

// AcquisitionQuota is the corp's quota of customers added through links
// (externalcontact/customer_acquisition_quota, a GET).
func (a *API) AcquisitionQuota(ctx context.Context) (*adapters.LinkQuota, error) {
	const op = "getting acquisition quota"
	var res quotaResponse
	err := a.do(ctx, a.contTok, op, func(token string) error {
		body, err := util.HTTPGetContext(ctx, qyapi+"externalcontact/customer_acquisition_quota?access_token="+url.QueryEscape(token))
		if err != nil {
			return err
		}
		return util.DecodeWithError(body, &res, "customer_acquisition_quota")
	})
	if err != nil {
		return nil, err
	}
	q := &adapters.LinkQuota{Total: res.Total, Balance: res.Balance, Lots: []adapters.QuotaLot{}}
	for _, l := range res.QuotaList {
		q.Lots = append(q.Lots, adapters.QuotaLot{Balance: l.Balance, Expires: time.Unix(l.ExpireDate, 0).UTC()})
	}
	q.Low = q.Balance <= 0 || q.Balance*10 < q.Total
	return q, nil
}

// ---- adapters.LinkMaker ----

var _ adapters.LinkMaker = (*Client)(nil)

// CreateLink creates an acquisition link to users and returns the URL
// to hand out, with state as its customer_channel.
func (c *Client) CreateLink(ctx context.Context, name string, users []string, state string) (string, string, error) {
	if state == "" || len(state) > maxCustomerChannel || strings.ContainsFunc(state, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return "", "", invalidRequest("creating acquisition link", "state %q: want 1 to %d letters, digits, '_' or '-'", state, maxCustomerChannel)
	}
	l, err := c.api.CreateAcquisitionLink(ctx, name, users)
	if err != nil {
		return "", "", err
	}
	sep := "?"
	if strings.Contains(l.URL, "?") {
		sep = "&"
	}
	return l.ID, l.URL + sep + "customer_channel=" + url.QueryEscape(state), nil
}

// LinkQuota is the corp's acquisition quota.
func (c *Client) LinkQuota(ctx context.Context) (*adapters.LinkQuota, error) {
	q, err := c.api.AcquisitionQuota(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the quota of %s: %w", c.key, err)
	}
	return q, nil
}
