package wecomfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// Acquisition links (获客助手): customer_acquisition/create_link,
// list_link, get and customer_acquisition_quota, with the shapes of
// WeCom's document 97297, and customer_acquisition callbacks.

// Paths of the acquisition link APIs.
const (
	PathCreateLink       = "/cgi-bin/externalcontact/customer_acquisition/create_link"
	PathListLink         = "/cgi-bin/externalcontact/customer_acquisition/list_link"
	PathGetLink          = "/cgi-bin/externalcontact/customer_acquisition/get"
	PathAcquisitionQuota = "/cgi-bin/externalcontact/customer_acquisition_quota"
)

// CodeNoAcquisitionQuota is answered when the corp has no quota left
// (not verified: WeCom's code for it is not documented where we read).
const CodeNoAcquisitionQuota = 41102

// AcquisitionLinkRequest is a link the server created.
type AcquisitionLinkRequest struct {
	LinkID string
	Name   string
	Users  []string
	URL    string
	Body   json.RawMessage
}

type acquisitionState struct {
	links   []AcquisitionLinkRequest
	total   int
	balance int
	expires time.Time
}

// SetAcquisitionQuota sets the corp's quota of customers through links.
// Until it is set, the quota is 1000 of 1000.
func (s *Server) SetAcquisitionQuota(total, balance int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acq.total, s.acq.balance = total, balance
}

// AcquisitionLinks returns the links created, in order.
func (s *Server) AcquisitionLinks() []AcquisitionLinkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acq.links)
}

func (s *Server) acqDefaults() {
	if s.acq.total == 0 && s.acq.balance == 0 {
		s.acq.total, s.acq.balance = 1000, 1000
	}
	if s.acq.expires.IsZero() {
		s.acq.expires = s.now().AddDate(1, 0, 0)
	}
}

func (s *Server) serveCreateLink(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		LinkName string `json:"link_name"`
		Range    struct {
			UserList       []string `json:"user_list"`
			DepartmentList []int    `json:"department_list"`
		} `json:"range"`
		SkipVerify bool `json:"skip_verify"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if n := utf8.RuneCountInString(req.LinkName); n == 0 || n > 30 {
		return nil, errorf(CodeInvalidParameter, "invalid link_name")
	}
	if len(req.Range.UserList) == 0 && len(req.Range.DepartmentList) == 0 {
		return nil, codeErr(CodeMissingUserID)
	}
	for _, u := range req.Range.UserList {
		if !s.isEmployee(u) {
			return nil, codeErr(CodeInvalidUserID)
		}
	}
	s.acqDefaults()
	if s.acq.balance <= 0 {
		return nil, errorf(CodeNoAcquisitionQuota, "customer acquisition quota exhausted")
	}
	id := "cawcde" + randomHex(8)
	l := AcquisitionLinkRequest{LinkID: id, Name: req.LinkName, Users: req.Range.UserList,
		URL: "https://work.weixin.qq.com/ca/" + id, Body: json.RawMessage(slices.Clone(body))}
	s.acq.links = append(s.acq.links, l)
	return map[string]any{"link": map[string]any{"link_id": l.LinkID, "link_name": l.Name, "url": l.URL, "create_time": s.now().Unix()}}, nil
}

func (s *Server) serveListLink(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		Limit  int    `json:"limit"`
		Cursor string `json:"cursor"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Limit < 1 || req.Limit > 100 {
		return nil, errorf(CodeInvalidParameter, "limit must be 1-100")
	}
	from, ok := decodeCursor("link", req.Cursor)
	if !ok || from > len(s.acq.links) {
		return nil, codeErr(CodeInvalidCursor)
	}
	to := min(from+req.Limit, len(s.acq.links))
	ids := []string{}
	for _, l := range s.acq.links[from:to] {
		ids = append(ids, l.LinkID)
	}
	next := ""
	if to < len(s.acq.links) {
		next = encodeCursor("link", to)
	}
	return map[string]any{"link_id_list": ids, "next_cursor": next}, nil
}

func (s *Server) serveGetLink(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		LinkID string `json:"link_id"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	for _, l := range s.acq.links {
		if l.LinkID == req.LinkID {
			return map[string]any{"link": map[string]any{"link_name": l.Name, "url": l.URL, "create_time": s.now().Unix()},
				"range": map[string]any{"user_list": l.Users, "department_list": []int{}}, "skip_verify": true}, nil
		}
	}
	return nil, errorf(CodeInvalidParameter, "invalid link_id")
}

func (s *Server) serveAcquisitionQuota(_ *http.Request, _ []byte) (map[string]any, *apiError) {
	s.acqDefaults()
	return map[string]any{"total": s.acq.total, "balance": s.acq.balance,
		"quota_list": []map[string]any{{"expire_date": s.acq.expires.Unix(), "balance": s.acq.balance}}}, nil
}

// AcquisitionNotice is a customer_acquisition event: ChangeType
// balance_low, balance_exhausted, quota_expire_soon, link_unavailable,
// delete_link or customer_start_chat.
type AcquisitionNotice struct {
	CorpID     string
	ChangeType string
	LinkID     string
	CreateTime time.Time
}

// XML returns the decrypted callback message.
func (e AcquisitionNotice) XML() []byte {
	corp := e.CorpID
	if corp == "" {
		corp = DefaultCorpID
	}
	return newDoc().text("ToUserName", corp).text("FromUserName", "sys").num("CreateTime", unix(e.CreateTime)).
		text("MsgType", "event").text("Event", wecom.EventCustomerAcquisition).text("ChangeType", e.ChangeType).
		textIf("LinkId", e.LinkID).bytes()
}
