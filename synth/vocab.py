"""Closed vocabularies of the synthetic world: names, industries, titles, pages, assets.

Kept as plain tuples and dicts, apart from the code that samples them, so that a
reader sees the whole universe of values in one place and the identity stage can
check which spellings it must cope with (e.g. `NICKNAMES`).
"""

from __future__ import annotations

INDUSTRIES: tuple[str, ...] = (
    "software",
    "manufacturing",
    "automotive",
    "financial_services",
    "healthcare",
    "retail",
    "logistics",
    "energy",
    "telecom",
    "education",
    "media",
    "government",
)
INDUSTRY_WEIGHTS: tuple[float, ...] = (14, 14, 8, 10, 8, 8, 7, 6, 6, 7, 6, 6)
# How much an industry raises the latent fit (our product sells to makers and builders).
INDUSTRY_FIT: dict[str, float] = {
    "software": 0.6,
    "manufacturing": 0.5,
    "automotive": 0.6,
    "financial_services": 0.3,
    "healthcare": 0.0,
    "retail": -0.2,
    "logistics": 0.2,
    "energy": 0.1,
    "telecom": 0.3,
    "education": -0.6,
    "media": -0.4,
    "government": -0.5,
}

FUNDING_STAGES: tuple[str, ...] = (
    "seed",
    "series_a",
    "series_b",
    "series_c",
    "series_d",
    "series_e_plus",
    "public",
)

SENIORITIES: tuple[str, ...] = ("c_level", "vp", "director", "manager", "individual")
SENIORITY_WEIGHTS: tuple[float, ...] = (5, 8, 15, 30, 42)
SENIORITY_FIT: dict[str, float] = {
    "c_level": 0.6,
    "vp": 0.7,
    "director": 0.6,
    "manager": 0.3,
    "individual": -0.3,
}

DEPARTMENTS: tuple[str, ...] = (
    "it",
    "engineering",
    "operations",
    "finance",
    "procurement",
    "marketing",
    "sales",
    "hr",
    "executive",
)
DEPARTMENT_WEIGHTS: tuple[float, ...] = (16, 18, 12, 8, 9, 14, 15, 5, 3)
C_LEVEL_DEPARTMENT_WEIGHTS: tuple[float, ...] = (15, 10, 10, 10, 3, 8, 7, 2, 35)
DEPARTMENT_FIT: dict[str, float] = {
    "it": 0.8,
    "engineering": 0.6,
    "operations": 0.2,
    "finance": 0.0,
    "procurement": 0.7,
    "marketing": -0.4,
    "sales": -0.5,
    "hr": -0.8,
    "executive": 0.3,
}
DEPARTMENT_LABELS: dict[str, str] = {
    "it": "IT",
    "engineering": "Engineering",
    "operations": "Operations",
    "finance": "Finance",
    "procurement": "Procurement",
    "marketing": "Marketing",
    "sales": "Sales",
    "hr": "Human Resources",
    "executive": "Strategy",
}
C_LEVEL_TITLES: dict[str, tuple[str, ...]] = {
    "it": ("CIO", "Chief Information Officer"),
    "engineering": ("CTO", "Chief Technology Officer"),
    "operations": ("COO", "Chief Operating Officer"),
    "finance": ("CFO", "Chief Financial Officer"),
    "procurement": ("CPO", "Chief Procurement Officer"),
    "marketing": ("CMO", "Chief Marketing Officer"),
    "sales": ("CRO", "Chief Revenue Officer"),
    "hr": ("CHRO", "Chief People Officer"),
    "executive": ("CEO", "Founder & CEO", "President", "General Manager"),
}
# Title templates per seniority; "{d}" is the department label.
TITLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "vp": ("VP of {d}", "Vice President, {d}", "VP {d}", "SVP {d}"),
    "director": ("Director of {d}", "{d} Director", "Head of {d}", "Senior Director, {d}"),
    "manager": ("{d} Manager", "Manager, {d}", "Senior {d} Manager", "{d} Lead"),
    "individual": ("{d} Specialist", "{d} Analyst", "Senior {d} Specialist", "{d} Associate"),
}
INDIVIDUAL_TITLES: dict[str, tuple[str, ...]] = {
    "it": ("Systems Administrator", "IT Engineer", "Network Engineer"),
    "engineering": ("Software Engineer", "Senior Software Engineer", "Data Engineer"),
    "procurement": ("Buyer", "Purchasing Specialist", "Sourcing Analyst"),
    "finance": ("Accountant", "Financial Analyst"),
    "marketing": ("Marketing Specialist", "Content Marketer"),
    "sales": ("Account Executive", "Sales Representative"),
    "hr": ("HR Generalist", "Recruiter"),
    "operations": ("Operations Coordinator", "Operations Analyst"),
    "executive": ("Executive Assistant", "Chief of Staff"),
}

# Brand-like group names are built from these syllables ("Vel" + "" + "trix").
NAME_HEADS: tuple[str, ...] = (
    "Vel", "Zen", "Quan", "Nor", "Astr", "Bri", "Cor", "Dex", "El", "Fyn", "Gal", "Hex",
    "Ion", "Jun", "Kor", "Lum", "Mar", "Nex", "Or", "Pra", "Quin", "Ros", "Syn", "Tal",
    "Ul", "Ver", "Wex", "Xan", "Yar", "Zor", "Alt", "Bel", "Cal", "Dyn", "Ev", "Flo",
    "Gen", "Hal", "Ister", "Kal", "Lex", "Mir", "Nov", "Omn", "Pol", "Rex", "Sol", "Ter",
    "Uni", "Vox", "Arc", "Bor", "Cyr", "Dor", "Fer", "Gor", "Hyp", "Jov", "Kin", "Lin",
)
NAME_MIDDLES: tuple[str, ...] = ("", "a", "i", "o", "e", "an", "or", "el", "u", "er", "is", "on")
NAME_TAILS: tuple[str, ...] = (
    "trix", "tech", "ora", "on", "is", "ex", "ium", "ar", "ent", "ova", "ly", "io", "sys",
    "gen", "ware", "ics", "ant", "eon", "ix", "us", "ana", "ida", "ion", "ara", "eda",
    "mont", "dale", "ford", "ton", "bridge", "point", "field", "stone", "vista", "nova",
)

# Regional subsidiaries: (name suffix, region, own-domain pattern with {b} = base name).
SUBSIDIARIES: tuple[tuple[str, str, str], ...] = (
    ("China", "china", "{b}.cn"),
    ("East China", "east_china", "{b}-east.cn"),
    ("South China", "south_china", "{b}-south.cn"),
    ("North China", "north_china", "{b}-north.cn"),
    ("West China", "west_china", "{b}-west.cn"),
    ("Europe", "europe", "{b}.eu"),
    ("Germany", "europe", "{b}.de"),
    ("UK", "europe", "{b}.co.uk"),
    ("USA", "north_america", "{b}-us.com"),
    ("Japan", "apac", "{b}.co.jp"),
    ("Singapore", "apac", "{b}.com.sg"),
    ("Asia Pacific", "apac", "{b}-apac.com"),
)
HOME_REGIONS: tuple[str, ...] = ("china", "north_america", "europe", "apac")
HOME_REGION_WEIGHTS: tuple[float, ...] = (60, 15, 20, 5)
CHINA_REGIONS: frozenset[str] = frozenset(
    {"china", "east_china", "south_china", "north_china", "west_china"}
)
# UTC offset of local business hours per region (no daylight saving: it is noise anyway).
REGION_UTC_OFFSET: dict[str, float] = {
    "china": 8,
    "east_china": 8,
    "south_china": 8,
    "north_china": 8,
    "west_china": 8,
    "apac": 8,
    "europe": 1,
    "north_america": -5,
}
SHARED_INBOXES: tuple[str, ...] = ("info", "sales", "contact", "marketing", "purchasing", "office")

WESTERN_FIRST: tuple[str, ...] = (
    "William", "Robert", "Elizabeth", "Katherine", "Michael", "James", "Thomas", "Jennifer",
    "Daniel", "Christopher", "Matthew", "Joseph", "Margaret", "Patricia", "Steven", "Andrew",
    "Anthony", "Benjamin", "Nicholas", "Samuel", "Alexander", "David", "Jonathan", "Edward",
    "Rebecca", "Susan", "Jessica", "Timothy", "Richard", "Charles", "Peter", "Emma", "Olivia",
    "Sophie", "Laura", "Anna", "Lukas", "Jonas", "Felix", "Hannah", "Sarah", "Mark", "Paul",
    "Claire", "Julia", "Maria", "Kevin", "Brian", "Chloe", "Lucas",
)
WESTERN_LAST: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Jackson", "White", "Harris", "Clark", "Lewis",
    "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson",
    "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner",
    "Parker", "Collins", "Edwards", "Stewart", "Mueller", "Schmidt", "Schneider", "Fischer",
    "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Dubois", "Bernard", "Rossi", "Garcia",
    "Lopez", "O'Brien", "McKenzie",
)
NICKNAMES: dict[str, str] = {
    "William": "Bill",
    "Robert": "Bob",
    "Elizabeth": "Liz",
    "Katherine": "Kate",
    "Michael": "Mike",
    "James": "Jim",
    "Thomas": "Tom",
    "Jennifer": "Jen",
    "Daniel": "Dan",
    "Christopher": "Chris",
    "Matthew": "Matt",
    "Joseph": "Joe",
    "Margaret": "Maggie",
    "Patricia": "Pat",
    "Steven": "Steve",
    "Andrew": "Andy",
    "Anthony": "Tony",
    "Benjamin": "Ben",
    "Nicholas": "Nick",
    "Samuel": "Sam",
    "Alexander": "Alex",
    "David": "Dave",
    "Jonathan": "Jon",
    "Edward": "Ed",
    "Rebecca": "Becky",
    "Susan": "Sue",
    "Jessica": "Jess",
    "Timothy": "Tim",
    "Richard": "Rick",
    "Charles": "Charlie",
    "Peter": "Pete",
}
CHINESE_SURNAMES: tuple[str, ...] = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun",
    "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie", "Song",
    "Tang", "Han", "Feng", "Deng", "Cao", "Peng", "Zeng", "Xiao", "Tian", "Dong", "Pan",
    "Yuan", "Cai", "Jiang", "Yu", "Du", "Ye", "Cheng", "Wei", "Su", "Ouyang",
)
CHINESE_GIVEN: tuple[str, ...] = (
    "Wei", "Fang", "Na", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan",
    "Jie", "Juan", "Tao", "Ming", "Chao", "Xiuying", "Xia", "Ping", "Gang", "Hui", "Xiaoming",
    "Jianguo", "Haiyan", "Yifan", "Zihan", "Yuxuan", "Hao", "Bo", "Lin", "Xin", "Yu", "Kai",
    "Rui", "Ning", "Dan", "Lu", "Hong", "Jian", "Zhiwei", "Xiaoli", "Meiling", "Jiahui",
    "Tingting", "Shuang", "Peng", "Bin", "Liang", "Xiaoyu",
)
PERSONAL_DOMAINS_CHINESE: tuple[str, ...] = ("qq.com", "163.com", "gmail.com", "outlook.com")
PERSONAL_DOMAINS_CHINESE_WEIGHTS: tuple[float, ...] = (40, 30, 15, 15)
PERSONAL_DOMAINS_WESTERN: tuple[str, ...] = ("gmail.com", "outlook.com", "163.com", "qq.com")
PERSONAL_DOMAINS_WESTERN_WEIGHTS: tuple[float, ...] = (60, 34, 3, 3)

PRODUCTS: tuple[str, ...] = ("Product A", "Product B", "Product C")
PRODUCT_WEIGHTS: tuple[float, ...] = (50, 30, 20)
SITE = "https://www.ourproduct.com"
# Landing pages (path, weight outside a buying cycle, weight inside one).
PAGES: tuple[tuple[str, float, float], ...] = (
    ("/", 18, 6),
    ("/product-a", 6, 16),
    ("/product-b", 4, 10),
    ("/product-c", 3, 7),
    ("/pricing", 2, 14),
    ("/customers", 2, 6),
    ("/integrations", 2, 5),
    ("/blog/data-quality-checklist", 9, 3),
    ("/blog/five-myths-about-integration", 8, 2),
    ("/blog/what-is-a-data-fabric", 8, 2),
    ("/blog/release-notes-3-2", 5, 3),
    ("/docs/getting-started", 6, 8),
    ("/docs/api-reference", 5, 7),
    ("/docs/security", 2, 5),
    ("/careers", 6, 0.5),
    ("/about", 4, 2),
    ("/contact", 1, 3),
)
UTM_SOURCES: tuple[str, ...] = ("google", "baidu", "linkedin", "wechat", "bing", "partner")
UTM_WEIGHTS: tuple[float, ...] = (30, 30, 15, 15, 5, 5)
ASSETS: tuple[str, ...] = (
    "Product A buyer's guide",
    "Product B technical whitepaper",
    "The 2026 state of data integration report",
    "ROI calculator for Product A",
    "Manufacturing analytics playbook",
    "Security and compliance overview",
    "Product C datasheet",
)
CONTACT_ASSETS: tuple[str, ...] = ("Product A demo", "Product B demo", "Pricing request")
WEBINAR_TOPICS: tuple[str, ...] = (
    "Product A deep dive",
    "What's new in Product B",
    "Data quality in manufacturing",
    "From pilot to production with Product C",
    "Customer panel: scaling analytics",
    "Security best practices",
    "Integrating your ERP",
)
SUMMITS: tuple[str, ...] = (
    "Data Summit Shanghai",
    "Product A World Tour Beijing",
    "Industry 4.0 Forum Shenzhen",
    "Customer Day Munich",
    "Data Summit Guangzhou",
    "Partner Summit Singapore",
)
CAMPAIGN_SUBJECTS: tuple[tuple[str, str, float], ...] = (
    # (subject template, landing path, share of the mailing list it targets)
    ("Monthly newsletter: {month}", "/blog/release-notes-3-2", 0.9),
    ("Product A: what's new in 3.{minor}", "/product-a", 0.5),
    ("Product B: faster pipelines in release 2.{minor}", "/product-b", 0.4),
    ("Invitation: {summit}", "/events", 0.6),
    ("Webinar: {topic}", "/webinars", 0.5),
    ("Customer story: how a manufacturer cut costs 30%", "/customers", 0.4),
    ("Your guide: {asset}", "/resources", 0.4),
)
