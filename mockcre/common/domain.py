"""Domain constants from the two source documents, kept in one place.

Everything here is quoted from seed 000 (``cre``) or seed 001 (``dm``); the schemas carry the same
values with their Chinese text, and tests check that the two agree.
"""

from __future__ import annotations

DIALECTS = ("cre", "dm")

#: Request kinds per dialect (the KIND argument of ``mockcre validate``).
REQUEST_KINDS = {"cre": ("item", "action", "query"), "dm": ("item", "action", "recommend")}

#: Response kinds per dialect; each has a schema file of its own.
RESPONSE_KINDS = {
    "cre": ("upload-response", "query-response"),
    "dm": ("report-response", "recommend-response", "error-response"),
}

#: Endpoint names used by routes, scenarios (``when.endpoint``) and the journal.
ENDPOINTS = ("cre.upload", "cre.test_upload", "cre.query", "cre.test_query", "dm.data", "dm.service")

#: HTTP path -> endpoint name; ``POST /`` is dm's real host root (routed by Host header or body).
PATHS = {
    "/upload": "cre.upload",
    "/cre_test_upload": "cre.test_upload",
    "/query": "cre.query",
    "/test-query": "cre.test_query",
    "/dm/data": "dm.data",
    "/dm/service": "dm.service",
    "/": "dm.root",
}

#: data_type of an upload or report -> what it carries (cre sends the code as a string, dm as a number).
DATA_TYPES = {"1": "item", "2": "action"}

GLOBAL_POOL = "0"  # "0" 表示全局 pool_id，任意物料都会加一个为 "0" 的 pool_id

# Return codes shared by both dialects (cre sends them as strings).
CODE_OK = 0
CODE_FORMAT_ERROR = -1  # 格式错误
CODE_SYSTEM_ERROR = -2  # 系统错误
CODE_ALGORITHM_ERROR = -3  # 算法错误 (also: empty result)

DAY = 86_400
CRE_DEFAULT_TTL = 365 * DAY  # expire_time 默认是 item_time+1 年
DM_DEFAULT_TTL = 30 * DAY  # expire_time 默认 item_time + 一个月
DM_DEFAULT_REQUEST_NUM = 50  # 默认每次请求50个
DM_MAX_REQUEST_NUM = 200  # 目前最多支持200个的 item 返回
DM_WEIGHT_MAX = 1_000_000  # 取值范围[0,1000000]
DESCRIBE_MAX_CHARS = 30 * 1024  # 长度不能超过 30k (read as 30 Ki characters)

# cre action_id (table 2): id -> (English, 中文)
CRE_ACTIONS = {
    "101": ("exposure", "曝光"),
    "102": ("click", "点击"),
    "103": ("download", "下载"),
    "104": ("read", "阅读"),
    "105": ("play", "播放"),
    "106": ("share", "转发/分享"),
    "107": ("like", "点赞"),
    "108": ("comment", "评论"),
    "109": ("pay", "支付"),
    "110": ("favourite", "收藏"),
    "111": ("search", "搜索"),
    "112": ("follow", "关注"),
    "113": ("reply", "回复"),
    "114": ("install", "安装"),
    "115": ("open", "打开"),
    "116": ("un-favourite", "取消收藏"),
    "117": ("add to cart", "加入购物车"),
    "118": ("remove from cart", "从购物车删除"),
    "119": ("favourite shop", "收藏店铺"),
    "120": ("un-favourite shop", "取消收藏店铺"),
    "121": ("follow", "关注"),
    "122": ("unfollow", "取消关注"),
    "123": ("purchase", "购买"),
    "124": ("cancel purchase", "取消购买"),
    "125": ("fast-forward", "播放快进"),
    "126": ("rewind", "播放快退"),
    "127": ("play next", "播放下一个"),
    "128": ("replay", "重播"),
}

# dm action_type: 1：曝光（浏览）,2：点击（播放）,3：转化（购买）,4：点赞
DM_ACTIONS = {1: ("exposure", "曝光"), 2: ("click", "点击（播放）"), 3: ("conversion", "转化（购买）"), 4: ("like", "点赞")}

CRE_EXPOSURE, CRE_CLICK = "101", "102"
CRE_PURCHASE_ACTIONS = frozenset({"109", "123"})  # 支付, 购买: never recommend the item again
CRE_PURCHASE_UNDO = "124"  # 取消购买
DM_EXPOSURE, DM_CLICK, DM_CONVERSION = 1, 2, 3

# Popularity weight of each action (recommender signal): a click counts more than an exposure,
# buying/liking/favouriting more still; undo actions subtract what their positive twin added.
CRE_ACTION_WEIGHTS = {
    "101": 1.0, "102": 5.0, "103": 8.0, "104": 4.0, "105": 4.0, "106": 8.0, "107": 8.0,
    "108": 6.0, "109": 20.0, "110": 10.0, "111": 2.0, "112": 6.0, "113": 4.0, "114": 12.0,
    "115": 3.0, "116": -10.0, "117": 12.0, "118": -12.0, "119": 6.0, "120": -6.0, "121": 6.0,
    "122": -6.0, "123": 20.0, "124": -20.0, "125": 1.0, "126": 1.0, "127": 2.0, "128": 4.0,
}
DM_ACTION_WEIGHTS = {1: 1.0, 2: 5.0, 3: 20.0, 4: 8.0}

# uid_type per dialect and request kind: value -> meaning.
CRE_UID_TYPES = {
    "0": "QQ number (qq)",
    "1": "WeChat id (微信号)",
    "2": "QQ openid (qq-openid)",
    "3": "IMEI/IDFA (imei/idfa)",
    "4": "phone number (手机号)",
    "5": "app-unique user (App 唯一用户)",
    "6": "WeChat openid (微信-openid)",
}
DM_UID_TYPES = {0: "QQ number (QQ)", 1: "WeChat id (微信号)", 3: "IMEI/IDFA or its MD5 (设备号, default)", 4: "phone number (手机号)"}
DM_DEFAULT_UID_TYPE = 3

DM_SERVICE_TYPES = {
    0: "pCTR",
    1: "traffic optimisation (流量优选)",
    2: "pCVR",
    3: "personalised recommendation (个性化推荐, default)",
    4: "item quality (物料优选)",
}
DM_DEFAULT_SERVICE_TYPE = 3

#: Body fields that carry a credential (cre ``token``, dm ``MD5`` signature), matched in any case and at
#: any depth: the journal, dashboard, report and recorder never show them in clear.
SECRET_FIELDS = frozenset({"token", "md5"})

#: Request headers that carry a credential, matched in any case: masked wherever a request is shown.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token"})

#: Headers that frame the HTTP message itself: the server writes them, a scenario may not (a wrong
#: Content-Length or Transfer-Encoding breaks the connection for the client and every request behind it).
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
                             "trailer", "proxy-connection"})
