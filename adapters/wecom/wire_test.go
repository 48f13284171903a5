package wecom

import (
	"encoding/xml"
	"errors"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const corp = "wx5823bf96d3bd56c7"

func TestParseMessage(t *testing.T) {
	tests := []struct {
		file    string
		want    *Message
		wantKey string
	}{
		{
			file: "add_external_contact.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "sys", CreateTime: 1403610513, MsgType: "event",
				Event: EventChangeExternalContact, ChangeType: ChangeTypeAddExternalContact,
				UserID: "zhangsan", ExternalUserID: "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
				State: "store-0451", WelcomeCode: "WELCOMECODE",
			},
			wantKey: "evt:" + corp + ":1403610513:add_external_contact:zhangsan:woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
		},
		{
			file: "add_half_external_contact.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "sys", CreateTime: 1403610514, MsgType: "event",
				Event: EventChangeExternalContact, ChangeType: ChangeTypeAddHalfExternalContact,
				UserID: "zhangsan", ExternalUserID: "woAJ2GCAAAXtWyujaWJHDDGi0mACBBBB",
				State: "teststate", WelcomeCode: "WELCOMECODE2",
			},
			wantKey: "evt:" + corp + ":1403610514:add_half_external_contact:zhangsan:woAJ2GCAAAXtWyujaWJHDDGi0mACBBBB",
		},
		{
			file: "edit_external_contact.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "sys", CreateTime: 1403610515, MsgType: "event",
				Event: EventChangeExternalContact, ChangeType: ChangeTypeEditExternalContact,
				UserID: "zhangsan", ExternalUserID: "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
			},
			wantKey: "evt:" + corp + ":1403610515:edit_external_contact:zhangsan:woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
		},
		{
			file: "del_external_contact.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "sys", CreateTime: 1403610516, MsgType: "event",
				Event: EventChangeExternalContact, ChangeType: ChangeTypeDelExternalContact,
				UserID: "zhangsan", ExternalUserID: "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
				Source: "DELETE_BY_TRANSFER",
			},
			wantKey: "evt:" + corp + ":1403610516:del_external_contact:zhangsan:woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
		},
		{
			file: "del_follow_user.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "sys", CreateTime: 1403610517, MsgType: "event",
				Event: EventChangeExternalContact, ChangeType: ChangeTypeDelFollowUser,
				UserID: "zhangsan", ExternalUserID: "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
			},
			wantKey: "evt:" + corp + ":1403610517:del_follow_user:zhangsan:woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
		},
		{
			file: "transfer_fail.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "sys", CreateTime: 1403610518, MsgType: "event",
				Event: EventChangeExternalContact, ChangeType: ChangeTypeTransferFail,
				UserID: "lisi", ExternalUserID: "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
				FailReason: "customer_refused",
			},
			wantKey: "evt:" + corp + ":1403610518:transfer_fail:lisi:woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
		},
		{
			// ChangeType as plain text, as WeCom's address-book events
			// send it.
			file: "delete_user.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "sys", CreateTime: 1403610520, MsgType: "event",
				Event: EventChangeContact, ChangeType: ChangeTypeDeleteUser, UserID: "zhangsan",
			},
			wantKey: "user:" + corp + ":1403610520:delete_user:zhangsan",
		},
		{
			file: "kf_msg_or_event.xml",
			want: &Message{
				ToUserName: corp, CreateTime: 1348831860, MsgType: "event", Event: EventKfMsgOrEvent,
				Token:    "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
				OpenKfID: "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q",
			},
			wantKey: "kf:ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
		},
		{
			file: "text.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "zhangsan", CreateTime: 1348831860, MsgType: MsgTypeText,
				AgentID: "1000002", MsgID: "1234567890123456", Content: "今天有哪些新会员？",
			},
			wantKey: "msg:1234567890123456",
		},
		{
			file: "location.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "zhangsan", CreateTime: 1351776360, MsgType: MsgTypeLocation,
				AgentID: "1000002", MsgID: "1234567890123457",
				Latitude: 23.134, Longitude: 113.358, Scale: 20, Label: "广州市海珠区客村艺苑路 106号",
			},
			wantKey: "msg:1234567890123457",
		},
		{
			file: "image.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "zhangsan", CreateTime: 1348831860, MsgType: MsgTypeImage,
				AgentID: "1000002", MsgID: "1234567890123458",
				PicURL: "https://wework.qpic.cn/wwpic/123456/0", MediaID: "1rlXZmfxSgondIF-5mdsyhfavs4SQLKnqcY5wa5qlnpk",
			},
			wantKey: "msg:1234567890123458",
		},
		{
			file: "enter_agent.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "zhangsan", CreateTime: 1408091189, MsgType: MsgTypeEvent,
				Event: "enter_agent", AgentID: "1000002",
			},
			wantKey: "other:" + corp + ":1000002:zhangsan:1408091189:event:enter_agent",
		},
		{
			file: "official_sample.xml",
			want: &Message{
				ToUserName: corp, FromUserName: "mycreate", CreateTime: 1409659813, MsgType: MsgTypeText,
				AgentID: "218", MsgID: "4561255354251345929", Content: "hello",
			},
			wantKey: "msg:4561255354251345929",
		},
	}
	c := newTestCrypto(t, corp)
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			plain := readTestdata(t, tc.file)
			got, err := ParseMessage(plain)
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseMessage mismatch (-want +got):\n%s", diff)
			}
			if key := got.DedupKey(); key != tc.wantKey {
				t.Errorf("DedupKey = %q, want %q", key, tc.wantKey)
			}

			// The same message through the whole callback path.
			out, err := c.Encrypt(plain, "1409659813", "1372623149")
			if err != nil {
				t.Fatal(err)
			}
			var r struct{ MsgSignature string }
			if err := xml.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			opened, err := c.Decrypt(r.MsgSignature, "1409659813", "1372623149", out)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			again, err := ParseMessage(opened)
			if err != nil {
				t.Fatalf("ParseMessage after Decrypt: %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("message changed through the callback path (-direct +callback):\n%s", diff)
			}
		})
	}
}

func TestParseMessageLenient(t *testing.T) {
	tests := []struct {
		name  string
		plain string
		want  *Message
	}{
		{
			name:  "xml declaration, spaces around numbers, no CDATA",
			plain: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml><MsgType> text </MsgType><CreateTime>\n 42 \n</CreateTime><MsgId> 7 </MsgId><Content>a &amp; b</Content></xml>",
			want:  &Message{MsgType: "text", CreateTime: 42, MsgID: "7", Content: "a & b"},
		},
		{
			name:  "unknown elements and nested ones are ignored",
			plain: "<xml><MsgType>event</MsgType><Event>location_select</Event><SendLocationInfo><Location_X>23</Location_X></SendLocationInfo><Extra><A>b</A></Extra></xml>",
			want:  &Message{MsgType: "event", Event: "location_select"},
		},
		{
			name:  "no CreateTime",
			plain: "<xml><MsgType>text</MsgType><MsgId>1</MsgId></xml>",
			want:  &Message{MsgType: "text", MsgID: "1"},
		},
		{
			name:  "location without Scale, coordinates as CDATA",
			plain: "<xml><MsgType>location</MsgType><Location_X><![CDATA[-33.8568]]></Location_X><Location_Y><![CDATA[151.2153]]></Location_Y></xml>",
			want:  &Message{MsgType: "location", Latitude: -33.8568, Longitude: 151.2153},
		},
		{
			name:  "location on the antimeridian and a pole",
			plain: "<xml><MsgType>location</MsgType><Location_X>90</Location_X><Location_Y>-180</Location_Y><Scale>0</Scale></xml>",
			want:  &Message{MsgType: "location", Latitude: 90, Longitude: -180},
		},
		{
			name:  "coordinates ignored outside location messages",
			plain: "<xml><MsgType>text</MsgType><Location_X>NaN</Location_X><Scale>big</Scale></xml>",
			want:  &Message{MsgType: "text"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tc.plain))
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseMessage mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMessageRejects(t *testing.T) {
	tests := []struct {
		name  string
		plain string
	}{
		{name: "empty", plain: ""},
		{name: "not xml", plain: `{"MsgType":"text"}`},
		{name: "truncated", plain: "<xml><MsgType>text</MsgType><Content>hel"},
		{name: "mismatched tags", plain: "<xml><MsgType>text</Content></xml>"},
		{name: "other root element", plain: "<msg><MsgType>text</MsgType></msg>"},
		{name: "no MsgType", plain: "<xml><Content>hello</Content><MsgId>1</MsgId></xml>"},
		{name: "blank MsgType", plain: "<xml><MsgType>  </MsgType></xml>"},
		{name: "CreateTime not a number", plain: "<xml><MsgType>text</MsgType><CreateTime>yesterday</CreateTime></xml>"},
		{name: "CreateTime negative", plain: "<xml><MsgType>text</MsgType><CreateTime>-1</CreateTime></xml>"},
		{name: "CreateTime overflows", plain: "<xml><MsgType>text</MsgType><CreateTime>99999999999999999999</CreateTime></xml>"},
		{name: "contact event without ChangeType", plain: "<xml><MsgType>event</MsgType><Event>change_external_contact</Event><UserID>u</UserID></xml>"},
		{name: "address-book event without ChangeType", plain: "<xml><MsgType>event</MsgType><Event>change_contact</Event><UserID>u</UserID></xml>"},
		{name: "delete_user without UserID", plain: "<xml><MsgType>event</MsgType><Event>change_contact</Event><ChangeType>delete_user</ChangeType></xml>"},
		{name: "location without coordinates", plain: "<xml><MsgType>location</MsgType><Label>x</Label></xml>"},
		{name: "location without longitude", plain: "<xml><MsgType>location</MsgType><Location_X>23.1</Location_X></xml>"},
		{name: "latitude out of range", plain: "<xml><MsgType>location</MsgType><Location_X>90.5</Location_X><Location_Y>113</Location_Y></xml>"},
		{name: "longitude out of range", plain: "<xml><MsgType>location</MsgType><Location_X>23</Location_X><Location_Y>-180.1</Location_Y></xml>"},
		{name: "latitude NaN", plain: "<xml><MsgType>location</MsgType><Location_X>NaN</Location_X><Location_Y>113</Location_Y></xml>"},
		{name: "longitude infinite", plain: "<xml><MsgType>location</MsgType><Location_X>23</Location_X><Location_Y>+Inf</Location_Y></xml>"},
		{name: "latitude not a number", plain: "<xml><MsgType>location</MsgType><Location_X>north</Location_X><Location_Y>113</Location_Y></xml>"},
		{name: "Scale not a number", plain: "<xml><MsgType>location</MsgType><Location_X>23</Location_X><Location_Y>113</Location_Y><Scale>1.5</Scale></xml>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tc.plain))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseMessage() = %+v, %v; want error %v", got, err, ErrMalformed)
			}
			if got != nil {
				t.Errorf("ParseMessage() returned %+v with the error", got)
			}
		})
	}
}

func TestDedupKey(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{
			name: "contact event keys on the event, not on MsgId",
			m: Message{ToUserName: corp, CreateTime: 5, MsgType: "event", Event: EventChangeExternalContact,
				ChangeType: "add_external_contact", UserID: "u", ExternalUserID: "e", MsgID: "9"},
			want: "evt:" + corp + ":5:add_external_contact:u:e",
		},
		{
			name: "address-book event keys on the employee",
			m: Message{ToUserName: corp, CreateTime: 5, MsgType: "event", Event: EventChangeContact,
				ChangeType: ChangeTypeDeleteUser, UserID: "u"},
			want: "user:" + corp + ":5:delete_user:u",
		},
		{
			name: "kf event without Token",
			m:    Message{ToUserName: corp, CreateTime: 5, MsgType: "event", Event: EventKfMsgOrEvent},
			want: "other:" + corp + "::" + ":5:event:kf_msg_or_event",
		},
		{
			name: "message without MsgId",
			m:    Message{ToUserName: corp, AgentID: "1", FromUserName: "u", CreateTime: 5, MsgType: "voice"},
			want: "other:" + corp + ":1:u:5:voice:",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.DedupKey(); got != tc.want {
				t.Errorf("DedupKey = %q, want %q", got, tc.want)
			}
		})
	}

	// Events that differ in any identifying field get different keys, and
	// the ":" separators keep shifted field boundaries apart.
	base := Message{ToUserName: corp, CreateTime: 5, MsgType: "event", Event: EventChangeExternalContact,
		ChangeType: "add_external_contact", UserID: "ab", ExternalUserID: "c"}
	variants := []func(m *Message){
		func(m *Message) { m.ToUserName = "ww0000000000000000" },
		func(m *Message) { m.CreateTime = 6 },
		func(m *Message) { m.ChangeType = "del_follow_user" },
		func(m *Message) { m.UserID, m.ExternalUserID = "a", "bc" },
	}
	seen := map[string]bool{base.DedupKey(): true}
	for i, vary := range variants {
		m := base
		vary(&m)
		k := m.DedupKey()
		if seen[k] {
			t.Errorf("variant %d: key %q collides", i, k)
		}
		seen[k] = true
	}
}

func BenchmarkParseMessage(b *testing.B) {
	for _, file := range []string{"add_external_contact.xml", "text.xml"} {
		plain := readTestdata(b, file)
		b.Run(file, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseMessage(plain); err != nil {
					b.Fatal(err)
				}
			}
		})
		// What the fast path saves.
		b.Run(file+"/encoding_xml", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var w wireMessage
				if err := xml.Unmarshal(plain, &w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestScanFlat(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		wantFast bool // whether the fast path answers
	}{
		{name: "cdata and numbers", doc: "<xml><MsgType><![CDATA[text]]></MsgType><CreateTime>1</CreateTime></xml>", wantFast: true},
		{name: "pretty printed", doc: "\n<xml>\n\t<MsgType><![CDATA[text]]></MsgType>\r\n\t<MsgId>2</MsgId>\n</xml>\n", wantFast: true},
		{name: "empty element", doc: "<xml><MsgType></MsgType><Content><![CDATA[]]></Content></xml>", wantFast: true},
		{name: "unknown element", doc: "<xml><AppType><![CDATA[wxwork]]></AppType><MsgType>text</MsgType></xml>", wantFast: true},
		{name: "repeated element, last wins", doc: "<xml><MsgType>a</MsgType><MsgType>b</MsgType></xml>", wantFast: true},
		{name: "angle bracket and ampersand in cdata", doc: "<xml><MsgType>t</MsgType><Content><![CDATA[<b>&amp;</b>]]></Content></xml>", wantFast: true},
		{name: "greater-than in text", doc: "<xml><MsgType>a>b</MsgType></xml>", wantFast: true},
		{name: "trailing bytes", doc: "<xml><MsgType>t</MsgType></xml><<<", wantFast: true},
		{name: "declaration", doc: "<?xml version=\"1.0\"?><xml><MsgType>t</MsgType></xml>"},
		{name: "byte order mark", doc: "\ufeff<xml><MsgType>t</MsgType></xml>"},
		{name: "comment", doc: "<xml><!-- c --><MsgType>t</MsgType></xml>"},
		{name: "attribute", doc: "<xml><MsgType a=\"1\">t</MsgType></xml>"},
		{name: "namespaced element", doc: "<xml><n:MsgType>t</n:MsgType></xml>"},
		{name: "namespaced root", doc: "<n:xml><MsgType>t</MsgType></n:xml>"},
		{name: "self-closing element", doc: "<xml><MsgType/><Content>c</Content></xml>"},
		{name: "nested element", doc: "<xml><MsgType>event</MsgType><SendLocationInfo><Label>x</Label></SendLocationInfo></xml>"},
		{name: "entity", doc: "<xml><Content>a &amp; b</Content><MsgType>t</MsgType></xml>"},
		{name: "carriage return in text", doc: "<xml><Content>a\r\nb</Content><MsgType>t</MsgType></xml>"},
		{name: "carriage return in cdata", doc: "<xml><Content><![CDATA[a\r\nb]]></Content><MsgType>t</MsgType></xml>"},
		{name: "text and cdata mixed", doc: "<xml><Content><![CDATA[a]]>b</Content><MsgType>t</MsgType></xml>"},
		{name: "text outside elements", doc: "<xml>junk<MsgType>t</MsgType></xml>"},
		{name: "end tag with space", doc: "<xml><MsgType>t</MsgType ></xml>"},
		{name: "mismatched end tag", doc: "<xml><MsgType>t</Content></xml>"},
		{name: "cdata end in text", doc: "<xml><MsgType>x]]>y</MsgType></xml>"},
		{name: "nul byte", doc: "<xml><MsgType>t\x00</MsgType></xml>"},
		{name: "invalid utf-8", doc: "<xml><MsgType>t\xff</MsgType></xml>"},
		{name: "noncharacter U+FFFE", doc: "<xml><MsgType>t\ufffe</MsgType></xml>"},
		{name: "unterminated cdata", doc: "<xml><MsgType><![CDATA[t</MsgType></xml>"},
		{name: "truncated", doc: "<xml><MsgType>t</MsgType>"},
		{name: "empty", doc: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fast wireMessage
			gotFast := scanFlat([]byte(tc.doc), fast.set)
			if gotFast != tc.wantFast {
				t.Fatalf("scanFlat() = %v, want %v", gotFast, tc.wantFast)
			}
			if !gotFast {
				return
			}
			var slow wireMessage
			if err := xml.Unmarshal([]byte(tc.doc), &slow); err != nil {
				t.Fatalf("encoding/xml rejects what scanFlat accepts: %v", err)
			}
			slow.XMLName = xml.Name{}
			if diff := cmp.Diff(slow, fast); diff != "" {
				t.Errorf("scanFlat disagrees with encoding/xml (-xml +scanFlat):\n%s", diff)
			}
		})
	}

	// Every sample WeCom-shaped file takes the fast path.
	for _, file := range []string{"add_external_contact.xml", "add_half_external_contact.xml", "edit_external_contact.xml",
		"del_external_contact.xml", "del_follow_user.xml", "transfer_fail.xml", "kf_msg_or_event.xml",
		"text.xml", "location.xml", "image.xml", "enter_agent.xml", "official_sample.xml"} {
		var w wireMessage
		if !scanFlat(readTestdata(t, file), w.set) {
			t.Errorf("%s takes the slow path", file)
		}
	}
	if !scanFlat([]byte(sampleBody), func(_, _ []byte) {}) {
		t.Error("the sample callback envelope takes the slow path")
	}
}

// TestWireMessageSet keeps the fast path's field table in step with the
// struct tags encoding/xml uses.
func TestWireMessageSet(t *testing.T) {
	typ := reflect.TypeFor[wireMessage]()
	for i := range typ.NumField() {
		field := typ.Field(i)
		if field.Name == "XMLName" {
			continue
		}
		name := field.Tag.Get("xml")
		var w wireMessage
		w.set([]byte(name), []byte("v"))
		if got := reflect.ValueOf(w).Field(i).String(); got != "v" {
			t.Errorf("set(%q) does not fill %s", name, field.Name)
		}
		if w != (wireMessage{}) {
			reflect.ValueOf(&w).Elem().Field(i).SetString("")
			if w != (wireMessage{}) {
				t.Errorf("set(%q) fills another field than %s: %+v", name, field.Name, w)
			}
		}
	}
}
