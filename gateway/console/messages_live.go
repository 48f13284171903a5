package console

// liveMessages are the strings of the live sessions page, merged into
// the catalogue.
var liveMessages = map[string]map[string]string{
	"en": {
		"nav.live":               "Live",
		"live.title":             "Live sessions",
		"live.lead":              "Store live sessions (门店直播): who was invited through their guide, who joined and who bought; schedule or cancel one.",
		"live.sessions":          "Sessions",
		"live.sessions_h":        "Invited → joined → bought per session, newest start first.",
		"live.session":           "Session",
		"live.when":              "When",
		"live.status":            "Status",
		"live.status_scheduled":  "Scheduled",
		"live.status_announcing": "Inviting…",
		"live.status_live":       "Live now",
		"live.status_ended":      "Ended",
		"live.status_cancelled":  "Cancelled",
		"live.revision":          "edited %d×",
		"live.invited":           "Invited",
		"live.joined":            "Joined",
		"live.bought":            "Bought",
		"live.all_stores":        "Every store of the brand",
		"live.cancel":            "Cancel",
		"live.none":              "No live session yet.",
		"live.schedule":          "Schedule a session",
		"live.schedule_h":        "Times in %s. The store's bound members are invited through their guides by the enabled live workflow.",
		"live.id":                "Id",
		"live.session_title":     "Title",
		"live.url":               "Live URL",
		"live.starts":            "Starts",
		"live.ends":              "Ends",
		"live.schedule_do":       "Schedule",
		"live.notice_scheduled":  "Session %s scheduled; its members are being invited.",
		"live.notice_cancelled":  "Session %s cancelled; no more invitations or reminders go out.",
		"live.bad_time":          "Not a date and time: %s",
		"live.conflict":          "A session with id %s already exists, with other details.",
		"live.cannot_cancel":     "Session %s has ended: it cannot be cancelled.",
	},
	"zh": {
		"nav.live":               "直播",
		"live.title":             "门店直播",
		"live.lead":              "门店直播：通过导购邀请了谁、谁进了直播间、谁下了单；在这里预约或取消直播。",
		"live.sessions":          "直播场次",
		"live.sessions_h":        "每场的邀请 → 观看 → 购买，按开播时间从新到旧。",
		"live.session":           "场次",
		"live.when":              "时间",
		"live.status":            "状态",
		"live.status_scheduled":  "已预约",
		"live.status_announcing": "邀请中…",
		"live.status_live":       "直播中",
		"live.status_ended":      "已结束",
		"live.status_cancelled":  "已取消",
		"live.revision":          "已修改 %d 次",
		"live.invited":           "邀请",
		"live.joined":            "观看",
		"live.bought":            "购买",
		"live.all_stores":        "品牌所有门店",
		"live.cancel":            "取消直播",
		"live.none":              "还没有直播。",
		"live.schedule":          "预约直播",
		"live.schedule_h":        "时间按 %s。门店绑定的会员由已启用的直播工作流通过导购邀请。",
		"live.id":                "编号",
		"live.session_title":     "标题",
		"live.url":               "直播链接",
		"live.starts":            "开始",
		"live.ends":              "结束",
		"live.schedule_do":       "预约",
		"live.notice_scheduled":  "直播 %s 已预约，正在邀请会员。",
		"live.notice_cancelled":  "直播 %s 已取消，不会再发送邀请和提醒。",
		"live.bad_time":          "日期时间有误：%s",
		"live.conflict":          "编号 %s 的直播已存在，且内容不同。",
		"live.cannot_cancel":     "直播 %s 已结束，不能取消。",
	},
}

func init() {
	for lang, msgs := range liveMessages {
		for k, v := range msgs {
			catalogue[lang][k] = v
		}
	}
}
