package wecom_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/templates"
)

func templateData() *templates.Data {
	shanghai := time.FixedZone("CST", 8*3600)
	return &templates.Data{
		Member: templates.Member{Name: "王小美", Points: 1280},
		Guide:  templates.Guide{Name: "李娜", Store: "静安嘉里中心店"},
		Store:  templates.Store{Name: "静安嘉里中心店", Address: "上海市静安区南京西路1515号B1-12", OpeningHours: "10:00-22:00"},
		Order: templates.Order{ID: "SO20240502001", Items: []templates.Item{{Name: "氨基酸洁面乳", Qty: 1}, {Name: "保湿精华水", Qty: 2}},
			PurchasedAt: time.Date(2024, 5, 1, 23, 30, 0, 0, time.UTC)},
		Brand:    templates.Brand{Name: "山茶花"},
		Coupon:   templates.Coupon{Code: "NEW50-8Q2X", Value: 5000, ExpiresAt: time.Date(2024, 6, 30, 23, 59, 59, 0, shanghai)},
		TimeZone: "Asia/Shanghai",
	}
}

// TestShippedTemplates is issue 15: the shipped workflow templates,
// rendered for WeCom as a workflow step renders them, reach the member
// through their guide with their card (a link for news, a miniprogram
// card), and the welcome goes out as the new contact's welcome.
func TestShippedTemplates(t *testing.T) {
	reg, err := templates.LoadDir("../../configs/templates")
	if err != nil {
		t.Fatalf("loading the shipped templates: %v", err)
	}
	for _, id := range []string{"first_purchase_coupon", "win_back", "repurchase_reminder", "welcome"} {
		for _, locale := range []string{"zh", "en"} {
			t.Run(id+"/"+locale, func(t *testing.T) {
				msg, err := reg.Render(id, locale, "wecom", templateData())
				if err != nil {
					t.Fatal(err)
				}
				e := newKindsEnv(t)
				if media := msg.Fields["pic_media_id"]; media != "" && !strings.HasPrefix(media, "http") {
					// The template names a media id the operator uploaded.
					e.fake.AddMedia("image", media)
				}
				shippedCover := msg.Fields["picurl"]
				if msg.Kind == "miniprogram" && shippedCover != "" {
					// The cover is a link the channel fetches and uploads:
					// the test has no shop.example.com, so the link's host
					// is swapped for a local media server serving a PNG at
					// the same path (the rest of the message is as shipped).
					u, err := url.Parse(shippedCover)
					if err != nil || u.Scheme != "https" {
						t.Fatalf("shipped cover %q is not an https link", shippedCover)
					}
					msg.Fields["picurl"] = e.media.url("/pic" + u.Path)
				}
				m := &adapters.Outbound{IdempotencyKey: "wf:1:" + id, To: "wmChen", ToParty: adapters.PartyMember, Via: "li",
					Kind: msg.Kind, Text: msg.Text, Fields: msg.Fields}
				if id == "welcome" {
					m.Fields = map[string]string{"welcome_code": e.fake.IssueWelcomeCode("wmChen")}
				}
				r, err := e.client.Send(context.Background(), m)
				if err != nil {
					t.Fatalf("Send %s (%s): %v", id, msg.Kind, err)
				}
				f := msg.Fields
				switch msg.Kind {
				case "news":
					tasks := e.fake.MsgTemplates()
					if len(tasks) != 1 || !r.Pending || r.ExternalID != tasks[0].MsgID {
						t.Fatalf("receipt %+v, %d tasks; want one pending task", r, len(tasks))
					}
					task := tasks[0]
					want := wecomfake.AttachmentLink{Title: f["title"], PicURL: f["picurl"], Desc: f["description"], URL: f["url"]}
					if task.Sender != "li" || len(task.ExternalUserIDs) != 1 || task.ExternalUserIDs[0] != "wmChen" ||
						len(task.Attachments) != 1 || task.Attachments[0].MsgType != "link" || *task.Attachments[0].Link != want {
						t.Errorf("task = %+v, attachments %+v; want a link %+v from li to wmChen", task, task.Attachments, want)
					}
					if !strings.Contains(want.URL, "NEW50-8Q2X") || !strings.Contains(want.Title, "50") || want.Desc == "" || want.PicURL == "" {
						t.Errorf("rendered link %+v lacks the coupon", want)
					}
				case "miniprogram":
					task := e.fake.MsgTemplates()[0]
					cover := f["pic_media_id"]
					if shippedCover != "" {
						// The picture was uploaded, and its media id sent.
						ups := e.fake.Uploads()
						if len(ups) != 1 || ups[0].Type != "image" || ups[0].ContentType != "image/png" || !strings.HasSuffix(ups[0].Filename, ".png") {
							t.Fatalf("uploads = %+v; want the cover, one PNG image", ups)
						}
						cover = ups[0].MediaID
					}
					want := wecomfake.AttachmentMini{Title: f["title"], PicMediaID: cover, AppID: f["appid"], Page: f["page"]}
					if len(task.Attachments) != 1 || task.Attachments[0].MsgType != "miniprogram" || *task.Attachments[0].MiniProgram != want {
						t.Errorf("attachments %+v; want a miniprogram %+v", task.Attachments, want)
					}
					if !strings.Contains(want.Page, "SO20240502001") {
						t.Errorf("page %q lacks the order", want.Page)
					}
				case "text":
					if id != "welcome" {
						t.Fatalf("%s rendered as text", id)
					}
					ws := e.fake.Welcomes()
					if len(ws) != 1 || ws[0].Text != msg.Text || ws[0].ExternalUserID != "wmChen" || !strings.Contains(ws[0].Text, "李娜") {
						t.Errorf("welcomes = %+v; want the rendered text for wmChen", ws)
					}
				default:
					t.Fatalf("%s rendered kind %s for WeCom", id, msg.Kind)
				}
			})
		}
	}
}
