// Package templates renders the messages workflows send: Go text/template
// texts, per locale and per channel, checked against the data they are
// executed with when they are loaded, not when a member is waiting.
//
// A template file (configs/templates/*.yaml) defines one template:
//
//	id: coupon                      # optional: defaults to the file name
//	description: first-purchase coupon
//	locales:                        # the first locale is the fallback
//	  zh:
//	    default: |                  # a text, used on any channel without its own variant
//	      {{.Member.Name}}您好，送您一张{{money .Coupon.Value}}优惠券。
//	    wecom:
//	      kind: news                # a kind WeCom sends
//	      title: "{{.Brand.Name}}送您{{money .Coupon.Value}}优惠券"
//	      description: 有效期至{{date "1月2日" .Coupon.ExpiresAt}}
//	      url: https://shop.example.com/coupons/{{.Coupon.Code}}
//	    dingtalk:
//	      kind: action_card         # a kind DingTalk sends
//	      title: ...
//	      text: ...
//	      single_title: 立即使用
//	      single_url: https://shop.example.com/coupons/{{.Coupon.Code}}
//	  en:
//	    default: Hi {{.Member.Name}}, here is a {{money .Coupon.Value}} coupon.
//
// Kinds and their fields: text {text}; markdown {title, text}; news
// {title, description, url, picurl}; miniprogram {title, appid, page,
// pic_media_id}; action_card {title, text, single_title, single_url};
// textcard {title, text, url, btntxt}; image {picurl}; file {url,
// filename}.
//
// Which kinds a channel sends is the channel's to say, not this
// package's: the wiring passes them, from the channels' specs, with
// WithChannels. Loading then refuses a variant key that is neither
// default nor a channel's name, and a channel's variant of a kind the
// channel cannot send, at the file, line and column of its kind. Without
// channels, variants are checked against the language only.
//
// Every field is a template executed with Data: .Member, .Guide, .Store,
// .Order, .Workflow, .Brand and .Coupon. Loading checks each one by
// walking its parse tree against Data's Go types, so {{.Member.Nmae}},
// {{.Guide.Phone}}, {{range .Order.Items}}{{.Nmae}}{{end}} or
// {{money .Member.Name}} fail with the file, line, column and template
// id. Besides text/template's builtins, templates call date, money,
// default, truncate, join, upper, lower and trim.
//
// Render returns a Message (kind, text, fields) that maps onto
// adapters.Outbound without this package importing it: templates is a
// ground-floor package and imports no other package of the project.
package templates
