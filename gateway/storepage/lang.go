package storepage

import (
	"strconv"
	"strings"
)

// language picks zh or en: ?lang= first, else the Accept-Language tag
// with the highest weight among zh and en, else zh.
func language(query, accept string) string {
	switch strings.ToLower(query) {
	case "zh", "en":
		return strings.ToLower(query)
	}
	best, bestQ := "zh", -1.0
	for _, part := range strings.Split(accept, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if base != "zh" && base != "en" {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}

// text are the page's words in one language.
type text struct {
	Lang, Title, Locate, Locating, LocateFailed, CityLabel, CityPlaceholder, Search     string
	NearYou, NearCity, NoneNear, NearestFar, Hours, HoursUnknown, OpenNow, Closed       string
	Navigate, Guides, AddGuide, AddStore, ScanHint, NoGuides, BadBrand, BadInput, Km, M string
	Privacy                                                                             string
	// The cloud-store page.
	Shop, ShopTitle, ShopBack, ShopEmpty, ShopBuy, ShopNoLink, OutOfStock, InStock, Recommended, NoStore string
	// The member code page.
	CodeTitle, CodeHint, CodeRefresh, ValidUntil, LinkExpired, LinkInvalid string
}

var texts = map[string]text{
	"zh": {Lang: "zh-CN", Title: "附近门店", Locate: "使用我的位置", Locating: "正在获取位置…",
		LocateFailed: "无法获取您的位置，请输入城市查找。", CityLabel: "城市", CityPlaceholder: "输入城市，如 上海", Search: "查找",
		NearYou: "离您最近的门店", NearCity: "%s的门店", NoneNear: "附近暂时没有门店。", NearestFar: "附近暂时没有门店，离您最近的是：",
		Hours: "营业时间", HoursUnknown: "以门店为准", OpenNow: "营业中", Closed: "休息中",
		Navigate: "导航", Guides: "门店导购", AddGuide: "加企业微信", AddStore: "添加门店企业微信",
		ScanHint: "长按识别二维码，添加后即可随时咨询", NoGuides: "到店即可获得专属导购服务",
		BadBrand: "没有找到这个品牌。", BadInput: "位置或城市有误：%s", Km: "%.1f 公里", M: "%d 米",
		Privacy: "您的位置只用于查找附近门店，不会被保存。",
		Shop:    "逛云店", ShopTitle: "门店云店", ShopBack: "附近门店", ShopEmpty: "这家门店暂时没有上架商品，欢迎到店选购。",
		ShopBuy: "去购买", ShopNoLink: "到店购买", OutOfStock: "暂时缺货", InStock: "有货", Recommended: "导购%s为您推荐",
		NoStore:   "没有找到这家门店。",
		CodeTitle: "会员码", CodeHint: "结账时请出示给收银员扫码，可识别会员、积分和可用优惠券", CodeRefresh: "每分钟自动更新，请勿截图转发",
		ValidUntil: "%s前有效", LinkExpired: "这个链接已过期。请在对话中再发送“会员码”获取新的链接。", LinkInvalid: "链接无效。请在对话中发送“会员码”获取。"},
	"en": {Lang: "en", Title: "Stores near you", Locate: "Use my location", Locating: "Finding you…",
		LocateFailed: "We could not get your location; search by city instead.", CityLabel: "City", CityPlaceholder: "City, e.g. Shanghai", Search: "Search",
		NearYou: "Stores nearest to you", NearCity: "Stores in %s", NoneNear: "There is no store near you yet.", NearestFar: "There is no store near you yet; the nearest are:",
		Hours: "Hours", HoursUnknown: "ask in store", OpenNow: "Open now", Closed: "Closed",
		Navigate: "Directions", Guides: "Personal shoppers", AddGuide: "Add on WeCom", AddStore: "Add the store on WeCom",
		ScanHint: "Press and hold the QR code to add, then message any time", NoGuides: "Ask in store for a personal shopper",
		BadBrand: "We could not find this brand.", BadInput: "Check the location or city: %s", Km: "%.1f km", M: "%d m",
		Privacy: "Your location is only used to find stores and is not kept.",
		Shop:    "Shop this store", ShopTitle: "Store shop", ShopBack: "Stores near you", ShopEmpty: "This store has no products online yet; visit us in store.",
		ShopBuy: "Buy", ShopNoLink: "In store", OutOfStock: "Out of stock", InStock: "In stock", Recommended: "Picked for you by %s",
		NoStore:   "We could not find this store.",
		CodeTitle: "Member code", CodeHint: "Show this at the till to use your points and coupons", CodeRefresh: "Refreshes every minute; do not share screenshots",
		ValidUntil: "valid until %s", LinkExpired: "This link has expired. Send \"member code\" in the chat for a new one.", LinkInvalid: "This link is not valid. Send \"member code\" in the chat for one."},
}
