package wecomfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// The corp's customer tag library (企业客户标签) and the tags employees
// put on customers: get_corp_tag_list, add_corp_tag, edit_corp_tag,
// del_corp_tag and mark_tag, with the shapes and errcodes of WeCom's
// documentation (documents 92117 and 92118).

// Paths of the customer tag APIs.
const (
	PathGetCorpTagList = "/cgi-bin/externalcontact/get_corp_tag_list"
	PathAddCorpTag     = "/cgi-bin/externalcontact/add_corp_tag"
	PathEditCorpTag    = "/cgi-bin/externalcontact/edit_corp_tag"
	PathDelCorpTag     = "/cgi-bin/externalcontact/del_corp_tag"
	PathMarkTag        = "/cgi-bin/externalcontact/mark_tag"
)

// Errcodes of the tag APIs (全局错误码; not verified against WeCom).
const (
	CodeInvalidTagID      = 40068 // 不合法的标签ID
	CodeTagNameExists     = 40071 // 标签名字已经存在
	CodeInvalidTagNameLen = 40072 // 标签名字长度不合法
)

// maxTagNameRunes is WeCom's limit on tag and group names.
const maxTagNameRunes = 30

// CorpTag is a tag of the fake corp's library.
type CorpTag struct {
	ID        string
	Name      string
	GroupID   string
	GroupName string
}

// MarkTagRequest is a mark_tag call the server carried out.
type MarkTagRequest struct {
	UserID         string
	ExternalUserID string
	AddTag         []string
	RemoveTag      []string
	Body           json.RawMessage
	At             time.Time
}

type tagGroup struct {
	id, name string
	created  time.Time
	tags     []*tagItem
}

type tagItem struct {
	id, name string
	created  time.Time
}

type tagState struct {
	groups []*tagGroup
	marks  []MarkTagRequest
}

// AddCorpTag adds a tag to the group named group (created when missing)
// and returns its id, as an administrator would in WeCom's console.
func (s *Server) AddCorpTag(group, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addTag(s.groupNamed(group), name).id
}

// CorpTags returns the library, group by group.
func (s *Server) CorpTags() []CorpTag {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CorpTag
	for _, g := range s.tagState.groups {
		for _, t := range g.tags {
			out = append(out, CorpTag{ID: t.id, Name: t.name, GroupID: g.id, GroupName: g.name})
		}
	}
	return out
}

// RenameCorpTagByAdmin renames a tag as an administrator would; it
// reports whether the tag exists. Deliver a TagChange to say so.
func (s *Server) RenameCorpTagByAdmin(id, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, t := s.tagByID(id)
	if t == nil {
		return false
	}
	t.name = name
	return true
}

// DeleteCorpTagByAdmin deletes a tag (or, given a group id, the group)
// as an administrator would: customers lose it.
func (s *Server) DeleteCorpTagByAdmin(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteTags([]string{id}, []string{id})
}

// SetCustomerTags sets the corp tags (by id) the employee userID put on
// the customer, as the employee would in WeCom.
func (s *Server) SetCustomerTags(externalUserID, userID string, tagIDs ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.followUser(externalUserID, userID)
	if f == nil {
		return false
	}
	f.TagIDs = slices.Clone(tagIDs)
	return true
}

// CustomerTags returns the names of the corp tags the employee userID
// put on the customer, sorted.
func (s *Server) CustomerTags(externalUserID, userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.followUser(externalUserID, userID)
	if f == nil {
		return nil
	}
	var out []string
	for _, id := range f.TagIDs {
		if _, t := s.tagByID(id); t != nil {
			out = append(out, t.name)
		}
	}
	slices.Sort(out)
	return out
}

// MarkTags returns the mark_tag calls carried out, in order.
func (s *Server) MarkTags() []MarkTagRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tagState.marks)
}

func (s *Server) followUser(externalUserID, userID string) *wecom.FollowUser {
	c := s.contacts[externalUserID]
	if c == nil {
		return nil
	}
	for i := range c.FollowUsers {
		if c.FollowUsers[i].UserID == userID {
			return &c.FollowUsers[i]
		}
	}
	return nil
}

func (s *Server) groupNamed(name string) *tagGroup {
	for _, g := range s.tagState.groups {
		if g.name == name {
			return g
		}
	}
	g := &tagGroup{id: "et" + randomHex(13), name: name, created: s.now()}
	s.tagState.groups = append(s.tagState.groups, g)
	return g
}

func (s *Server) addTag(g *tagGroup, name string) *tagItem {
	t := &tagItem{id: "et" + randomHex(13), name: name, created: s.now()}
	g.tags = append(g.tags, t)
	return t
}

func (s *Server) tagByID(id string) (*tagGroup, *tagItem) {
	for _, g := range s.tagState.groups {
		for _, t := range g.tags {
			if t.id == id {
				return g, t
			}
		}
	}
	return nil, nil
}

func (s *Server) deleteTags(tagIDs, groupIDs []string) {
	s.tagState.groups = slices.DeleteFunc(s.tagState.groups, func(g *tagGroup) bool { return slices.Contains(groupIDs, g.id) })
	for _, g := range s.tagState.groups {
		g.tags = slices.DeleteFunc(g.tags, func(t *tagItem) bool { return slices.Contains(tagIDs, t.id) })
	}
	// Customers lose the tags that are gone.
	for _, c := range s.contacts {
		for i := range c.FollowUsers {
			f := &c.FollowUsers[i]
			f.TagIDs = slices.DeleteFunc(f.TagIDs, func(id string) bool { _, t := s.tagByID(id); return t == nil })
		}
	}
}

// tagJSON is a tag as get_corp_tag_list and add_corp_tag return it.
func tagJSON(t *tagItem, order int) map[string]any {
	return map[string]any{"id": t.id, "name": t.name, "create_time": t.created.Unix(), "order": order}
}

func groupJSON(g *tagGroup, order int, tags []*tagItem) map[string]any {
	items := make([]map[string]any, 0, len(tags))
	for i, t := range tags {
		items = append(items, tagJSON(t, i+1))
	}
	return map[string]any{"group_id": g.id, "group_name": g.name, "create_time": g.created.Unix(), "order": order, "tag": items}
}

func (s *Server) serveGetCorpTagList(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		TagID   []string `json:"tag_id"`
		GroupID []string `json:"group_id"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if e := decode(body, &req); e != nil {
			return nil, e
		}
	}
	groups := make([]map[string]any, 0, len(s.tagState.groups))
	for i, g := range s.tagState.groups {
		// group_id filters by group (tag_id is then ignored); tag_id by tag.
		if len(req.GroupID) > 0 && !slices.Contains(req.GroupID, g.id) {
			continue
		}
		tags := g.tags
		if len(req.GroupID) == 0 && len(req.TagID) > 0 {
			tags = slices.DeleteFunc(slices.Clone(tags), func(t *tagItem) bool { return !slices.Contains(req.TagID, t.id) })
			if len(tags) == 0 {
				continue
			}
		}
		groups = append(groups, groupJSON(g, i+1, tags))
	}
	return map[string]any{"tag_group": groups}, nil
}

func checkTagName(name string) *apiError {
	if n := utf8.RuneCountInString(name); n == 0 || n > maxTagNameRunes {
		return errorf(CodeInvalidTagNameLen, "invalid tag name length")
	}
	return nil
}

func (s *Server) serveAddCorpTag(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		GroupID   string `json:"group_id"`
		GroupName string `json:"group_name"`
		Order     int    `json:"order"`
		Tag       []struct {
			Name  string `json:"name"`
			Order int    `json:"order"`
		} `json:"tag"`
		AgentID int `json:"agentid"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	var g *tagGroup
	switch {
	case req.GroupID != "":
		// group_id given: group_name is ignored.
		for _, x := range s.tagState.groups {
			if x.id == req.GroupID {
				g = x
			}
		}
		if g == nil {
			return nil, codeErr(CodeInvalidTagID)
		}
	default:
		if e := checkTagName(req.GroupName); e != nil {
			return nil, e
		}
	}
	if len(req.Tag) == 0 {
		return nil, errorf(CodeInvalidParameter, "tag is empty")
	}
	for _, t := range req.Tag {
		if e := checkTagName(t.Name); e != nil {
			return nil, e
		}
	}
	if g == nil {
		g = s.groupNamed(req.GroupName)
	}
	for _, t := range req.Tag {
		if slices.ContainsFunc(g.tags, func(x *tagItem) bool { return x.name == t.Name }) {
			return nil, codeErr(CodeTagNameExists)
		}
	}
	var added []*tagItem
	for _, t := range req.Tag {
		added = append(added, s.addTag(g, t.Name))
	}
	return map[string]any{"tag_group": groupJSON(g, slices.Index(s.tagState.groups, g)+1, added)}, nil
}

func (s *Server) serveEditCorpTag(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Order   int    `json:"order"`
		AgentID int    `json:"agentid"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Name != "" {
		if e := checkTagName(req.Name); e != nil {
			return nil, e
		}
	}
	for _, g := range s.tagState.groups {
		if g.id == req.ID {
			if req.Name != "" {
				g.name = req.Name
			}
			return map[string]any{}, nil
		}
	}
	g, t := s.tagByID(req.ID)
	if t == nil {
		return nil, codeErr(CodeInvalidTagID)
	}
	if req.Name != "" && req.Name != t.name && slices.ContainsFunc(g.tags, func(x *tagItem) bool { return x.name == req.Name }) {
		return nil, codeErr(CodeTagNameExists)
	}
	if req.Name != "" {
		t.name = req.Name
	}
	return map[string]any{}, nil
}

func (s *Server) serveDelCorpTag(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		TagID   []string `json:"tag_id"`
		GroupID []string `json:"group_id"`
		AgentID int      `json:"agentid"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if len(req.TagID) == 0 && len(req.GroupID) == 0 {
		return nil, errorf(CodeInvalidParameter, "tag_id and group_id are empty")
	}
	for _, id := range req.TagID {
		if _, t := s.tagByID(id); t == nil {
			return nil, codeErr(CodeInvalidTagID)
		}
	}
	s.deleteTags(req.TagID, req.GroupID)
	return map[string]any{}, nil
}

func (s *Server) serveMarkTag(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		UserID         string   `json:"userid"`
		ExternalUserID string   `json:"external_userid"`
		AddTag         []string `json:"add_tag"`
		RemoveTag      []string `json:"remove_tag"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	switch {
	case req.UserID == "":
		return nil, codeErr(CodeMissingUserID)
	case req.ExternalUserID == "":
		return nil, codeErr(CodeMissingExternalUser)
	case !s.isEmployee(req.UserID):
		return nil, codeErr(CodeInvalidUserID)
	}
	f := s.followUser(req.ExternalUserID, req.UserID)
	if f == nil {
		return nil, codeErr(CodeNotExternalContact)
	}
	if len(req.AddTag) == 0 && len(req.RemoveTag) == 0 {
		return nil, errorf(CodeInvalidParameter, "add_tag and remove_tag are empty")
	}
	for _, id := range slices.Concat(req.AddTag, req.RemoveTag) {
		if _, t := s.tagByID(id); t == nil {
			return nil, codeErr(CodeInvalidTagID)
		}
	}
	for _, id := range req.AddTag {
		if !slices.Contains(f.TagIDs, id) {
			f.TagIDs = append(f.TagIDs, id)
		}
	}
	f.TagIDs = slices.DeleteFunc(f.TagIDs, func(id string) bool { return slices.Contains(req.RemoveTag, id) })
	s.tagState.marks = append(s.tagState.marks, MarkTagRequest{UserID: req.UserID, ExternalUserID: req.ExternalUserID,
		AddTag: req.AddTag, RemoveTag: req.RemoveTag, Body: json.RawMessage(slices.Clone(body)), At: s.now()})
	return map[string]any{}, nil
}

// TagChange is a change_external_tag event (企业客户标签 变更回调).
type TagChange struct {
	// CorpID is ToUserName; default DefaultCorpID.
	CorpID string
	// ID is the tag or group (none for a shuffle of every group).
	ID string
	// TagType is "tag" or "tag_group".
	TagType string
	// ChangeType is create, update, delete or shuffle.
	ChangeType string
	// StrategyID is the rule group of a strategy tag, if any.
	StrategyID string
	// CreateTime defaults to now.
	CreateTime time.Time
}

// XML returns the decrypted callback message.
func (e TagChange) XML() []byte {
	corp := e.CorpID
	if corp == "" {
		corp = DefaultCorpID
	}
	d := newDoc().text("ToUserName", corp).text("FromUserName", "sys").num("CreateTime", unix(e.CreateTime)).
		text("MsgType", "event").text("Event", wecom.EventChangeExternalTag)
	d.textIf("Id", e.ID).textIf("TagType", e.TagType).text("ChangeType", e.ChangeType).textIf("StrategyId", e.StrategyID)
	return d.bytes()
}
