package storepage

import "strings"

// city is a city centre a member can search from when they do not share
// their location.
type city struct {
	zh, en   string
	lat, lng float64
}

// cities are China's municipalities, provincial capitals and a few large
// cities, with their centres (WGS-84).
var cities = []city{
	{"北京", "Beijing", 39.9042, 116.4074}, {"上海", "Shanghai", 31.2304, 121.4737},
	{"广州", "Guangzhou", 23.1291, 113.2644}, {"深圳", "Shenzhen", 22.5431, 114.0579},
	{"天津", "Tianjin", 39.3434, 117.3616}, {"重庆", "Chongqing", 29.5630, 106.5516},
	{"杭州", "Hangzhou", 30.2741, 120.1551}, {"南京", "Nanjing", 32.0603, 118.7969},
	{"苏州", "Suzhou", 31.2989, 120.5853}, {"成都", "Chengdu", 30.5728, 104.0668},
	{"武汉", "Wuhan", 30.5928, 114.3055}, {"西安", "Xi'an", 34.3416, 108.9398},
	{"长沙", "Changsha", 28.2282, 112.9388}, {"郑州", "Zhengzhou", 34.7466, 113.6254},
	{"青岛", "Qingdao", 36.0671, 120.3826}, {"厦门", "Xiamen", 24.4798, 118.0894},
	{"宁波", "Ningbo", 29.8683, 121.5440}, {"无锡", "Wuxi", 31.4912, 120.3119},
	{"东莞", "Dongguan", 23.0207, 113.7518}, {"佛山", "Foshan", 23.0215, 113.1214},
	{"沈阳", "Shenyang", 41.8057, 123.4315}, {"大连", "Dalian", 38.9140, 121.6147},
	{"济南", "Jinan", 36.6512, 117.1201}, {"合肥", "Hefei", 31.8206, 117.2272},
	{"福州", "Fuzhou", 26.0745, 119.2965}, {"昆明", "Kunming", 24.8801, 102.8329},
	{"哈尔滨", "Harbin", 45.8038, 126.5350}, {"长春", "Changchun", 43.8171, 125.3235},
	{"石家庄", "Shijiazhuang", 38.0428, 114.5149}, {"太原", "Taiyuan", 37.8706, 112.5489},
	{"南昌", "Nanchang", 28.6820, 115.8579}, {"南宁", "Nanning", 22.8170, 108.3665},
	{"贵阳", "Guiyang", 26.6470, 106.6302}, {"海口", "Haikou", 20.0440, 110.1999},
	{"兰州", "Lanzhou", 36.0611, 103.8343}, {"乌鲁木齐", "Urumqi", 43.8256, 87.6168},
	{"呼和浩特", "Hohhot", 40.8424, 111.7490}, {"香港", "Hong Kong", 22.3193, 114.1694},
	{"澳门", "Macau", 22.1987, 113.5439}, {"台北", "Taipei", 25.0330, 121.5654},
}

// findCity finds a city by its Chinese name ("上海", "上海市") or English
// one, case and spaces aside.
func findCity(name string) (city, bool) {
	n := strings.TrimSpace(name)
	n = strings.TrimSuffix(n, "市")
	key := strings.ToLower(strings.ReplaceAll(n, " ", ""))
	for _, c := range cities {
		if c.zh == n || strings.ToLower(strings.ReplaceAll(c.en, " ", "")) == key {
			return c, true
		}
	}
	return city{}, false
}
