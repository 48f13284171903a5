package wecom

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/silenceper/wechat/v2/util"

	"github.com/scrmgw/scrmgw/adapters"
)

// Customer tags (企业客户标签): the corp's tag library, in groups, and the
// tags an employee puts on a customer. scrmgw tags are corp tags by name:
// a guide's corp tag on a customer is the member's tag of that name; a
// tag a workflow or the API sets is marked on the customer (mark_tag, by
// the guide who has them), created first in the group Config.TagGroup
// when the corp has no tag of that name.

// DefaultTagGroup is the corp tag group scrmgw creates its tags in.
const DefaultTagGroup = "scrmgw"

// MaxTagNameRunes is WeCom's limit on a corp tag's (and group's) name:
// 30 characters.
const MaxTagNameRunes = 30

// maxMarkTags bounds the tags of one mark_tag call (not documented; a
// customer carries at most a few hundred tags).
const maxMarkTags = 100

// tagCacheTTL is how long the tag library read last is used to turn tag
// names into ids before it is read again.
const tagCacheTTL = time.Minute

// CorpTag is a tag of the corp's customer tag library.
type CorpTag struct {
	ID        string
	Name      string
	GroupID   string
	GroupName string
	Order     int
	Created   time.Time
}

type corpTagItem struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CreateTime int64  `json:"create_time"`
	Order      int    `json:"order"`
	Deleted    bool   `json:"deleted"`
}

type corpTagGroup struct {
	GroupID    string        `json:"group_id"`
	GroupName  string        `json:"group_name"`
	CreateTime int64         `json:"create_time"`
	Order      int           `json:"order"`
	Deleted    bool          `json:"deleted"`
	Tag        []corpTagItem `json:"tag"`
}

func (g corpTagGroup) tags() []CorpTag {
	var out []CorpTag
	for _, t := range g.Tag {
		if t.Deleted || g.Deleted {
			continue
		}
		ct := CorpTag{ID: t.ID, Name: t.Name, GroupID: g.GroupID, GroupName: g.GroupName, Order: t.Order}
		if t.CreateTime > 0 {
			ct.Created = time.Unix(t.CreateTime, 0).UTC()
		}
		out = append(out, ct)
	}
	return out
}

type corpTagListRequest struct {
	TagID   []string `json:"tag_id,omitempty"`
	GroupID []string `json:"group_id,omitempty"`
}

type corpTagListResponse struct {
	util.CommonError
	TagGroup []corpTagGroup `json:"tag_group"`
}

// CorpTags lists the corp's customer tags (externalcontact/get_corp_tag_list;
// one call returns the whole library).
func (a *API) CorpTags(ctx context.Context) ([]CorpTag, error) {
	var res corpTagListResponse
	if err := a.post(ctx, a.contTok, "listing corp tags", "externalcontact/get_corp_tag_list", corpTagListRequest{}, &res); err != nil {
		return nil, err
	}
	var out []CorpTag
	for _, g := range res.TagGroup {
		out = append(out, g.tags()...)
	}
	return out, nil
}

// okResponse is the answer of calls that return nothing but errcode.
type okResponse struct {
	util.CommonError
}

type addCorpTagName struct {
	Name string `json:"name"`
}

type addCorpTagRequest struct {
	GroupID   string           `json:"group_id,omitempty"`
	GroupName string           `json:"group_name,omitempty"`
	Tag       []addCorpTagName `json:"tag"`
}

type addCorpTagResponse struct {
	util.CommonError
	TagGroup corpTagGroup `json:"tag_group"`
}

// checkTagName reports a name WeCom would refuse: empty, over 30
// characters, or with surrounding spaces.
func checkTagName(op, what, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return invalidRequest(op, "empty %s name", what)
	case strings.TrimSpace(name) != name:
		return invalidRequest(op, "%s name %q has surrounding spaces", what, name)
	case utf8.RuneCountInString(name) > MaxTagNameRunes:
		return invalidRequest(op, "%s name %q is %d characters, WeCom allows %d", what, name, utf8.RuneCountInString(name), MaxTagNameRunes)
	}
	return nil
}

// AddCorpTags creates tags in the group named group, which WeCom creates
// when the corp has no group of that name (externalcontact/add_corp_tag).
// It returns the tags created.
func (a *API) AddCorpTags(ctx context.Context, group string, names []string) ([]CorpTag, error) {
	const op = "adding corp tags"
	if err := checkTagName(op, "tag group", group); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, invalidRequest(op, "no tags")
	}
	req := addCorpTagRequest{GroupName: group}
	for _, n := range names {
		if err := checkTagName(op, "tag", n); err != nil {
			return nil, err
		}
		req.Tag = append(req.Tag, addCorpTagName{Name: n})
	}
	var res addCorpTagResponse
	if err := a.post(ctx, a.contTok, op, "externalcontact/add_corp_tag", req, &res); err != nil {
		return nil, err
	}
	return res.TagGroup.tags(), nil
}

type editCorpTagRequest struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// RenameCorpTag renames a tag or tag group (externalcontact/edit_corp_tag).
func (a *API) RenameCorpTag(ctx context.Context, id, name string) error {
	const op = "renaming corp tag"
	if id == "" {
		return invalidRequest(op, "no tag id")
	}
	if err := checkTagName(op, "tag", name); err != nil {
		return err
	}
	var res okResponse
	return a.post(ctx, a.contTok, op, "externalcontact/edit_corp_tag", editCorpTagRequest{ID: id, Name: name}, &res)
}

type delCorpTagRequest struct {
	TagID   []string `json:"tag_id,omitempty"`
	GroupID []string `json:"group_id,omitempty"`
}

// DeleteCorpTags deletes tags and tag groups (a group with its tags)
// (externalcontact/del_corp_tag).
func (a *API) DeleteCorpTags(ctx context.Context, tagIDs, groupIDs []string) error {
	const op = "deleting corp tags"
	if len(tagIDs) == 0 && len(groupIDs) == 0 {
		return invalidRequest(op, "no tag or group id")
	}
	var res okResponse
	return a.post(ctx, a.contTok, op, "externalcontact/del_corp_tag", delCorpTagRequest{TagID: tagIDs, GroupID: groupIDs}, &res)
}

type markTagRequest struct {
	UserID         string   `json:"userid"`
	ExternalUserID string   `json:"external_userid"`
	AddTag         []string `json:"add_tag,omitempty"`
	RemoveTag      []string `json:"remove_tag,omitempty"`
}

// MarkTag adds and removes corp tags (by id) on a customer, as the
// employee userID who has them (externalcontact/mark_tag). 84061 (the
// employee does not have the customer) is ErrInvalidRecipient.
func (a *API) MarkTag(ctx context.Context, userID, externalUserID string, add, remove []string) error {
	op := "marking tags on " + externalUserID
	if userID == "" || externalUserID == "" {
		return noRecipient(op, "userid or external userid")
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	if len(add)+len(remove) > maxMarkTags {
		return invalidRequest(op, "%d tags, at most %d", len(add)+len(remove), maxMarkTags)
	}
	var res okResponse
	return a.post(ctx, a.contTok, op, "externalcontact/mark_tag",
		markTagRequest{UserID: userID, ExternalUserID: externalUserID, AddTag: add, RemoveTag: remove}, &res)
}

// ---- the channel's tags (adapters.Tagger) ----

var _ adapters.Tagger = (*Client)(nil)

// tagCache is the tag library read last.
type tagCache struct {
	mu   sync.Mutex
	tags []CorpTag
	at   time.Time
}

// Tags reads the corp's tag library (and keeps it for MarkTags).
func (c *Client) Tags(ctx context.Context) ([]adapters.ChannelTag, error) {
	tags, err := c.corpTags(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]adapters.ChannelTag, 0, len(tags))
	for _, t := range tags {
		out = append(out, adapters.ChannelTag{ID: t.ID, Name: t.Name, GroupID: t.GroupID, GroupName: t.GroupName})
	}
	return out, nil
}

func (c *Client) corpTags(ctx context.Context, fresh bool) ([]CorpTag, error) {
	c.tags.mu.Lock()
	defer c.tags.mu.Unlock()
	if !fresh && c.tags.tags != nil && c.now().Sub(c.tags.at) < tagCacheTTL {
		return c.tags.tags, nil
	}
	tags, err := c.api.CorpTags(ctx)
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []CorpTag{}
	}
	c.tags.tags, c.tags.at = tags, c.now()
	return tags, nil
}

// CheckTag reports a tag name WeCom would refuse.
func (c *Client) CheckTag(name string) error {
	return checkTagName("checking tag", "tag", name)
}

// MarkTags marks tags by name on a customer as the employee via (or,
// when via is "", the first employee who has the customer). Tags to add
// the corp lacks are created in Config.TagGroup; tags to remove the corp
// lacks are skipped. A name held by tags of several groups adds the
// first and removes them all.
func (c *Client) MarkTags(ctx context.Context, via, externalID string, add, remove []string) error {
	op := "marking tags on " + externalID
	for _, n := range add {
		if err := c.CheckTag(n); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if via == "" {
		ct, err := c.api.ExternalContact(ctx, externalID)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if len(ct.FollowUsers) == 0 {
			return noRecipient(op, "employee who has the customer")
		}
		via = ct.FollowUsers[0].UserID
	}
	addIDs, removeIDs, missing, err := c.tagIDs(ctx, add, remove, false)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(missing) > 0 {
		// Another replica may have created them meanwhile: read again
		// before creating.
		if addIDs, removeIDs, missing, err = c.tagIDs(ctx, add, remove, true); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if len(missing) > 0 {
		created, err := c.api.AddCorpTags(ctx, c.cfg.TagGroup, missing)
		if err != nil {
			return fmt.Errorf("%s: creating tags %v: %w", op, missing, err)
		}
		for _, t := range created {
			addIDs = append(addIDs, t.ID)
		}
		c.tags.mu.Lock()
		c.tags.at = time.Time{} // read the library again next time
		c.tags.mu.Unlock()
	}
	return c.api.MarkTag(ctx, via, externalID, addIDs, removeIDs)
}

// tagIDs turns names into corp tag ids; missing are the names to add
// the corp has no tag of.
func (c *Client) tagIDs(ctx context.Context, add, remove []string, fresh bool) (addIDs, removeIDs, missing []string, err error) {
	tags, err := c.corpTags(ctx, fresh)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, n := range add {
		i := slices.IndexFunc(tags, func(t CorpTag) bool { return t.Name == n })
		if i < 0 {
			missing = append(missing, n)
			continue
		}
		addIDs = append(addIDs, tags[i].ID)
	}
	for _, n := range remove {
		for _, t := range tags {
			if t.Name == n {
				removeIDs = append(removeIDs, t.ID)
			}
		}
	}
	return addIDs, removeIDs, missing, nil
}
