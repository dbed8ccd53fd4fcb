"""Generate tests/data/hospital_queries.csv from tests/data/hospitals_zhejiang.csv (issue 11).

Run from the repository root: ``.venv/bin/python tests/data/make_hospital_queries.py``. Deterministic (fixed
seed); the output is committed, so a change to the rules shows up as a diff of the table.

Columns of the output: ``query,expected,kind``. ``expected`` is the official name, several names joined by ``|``
(kind ``ambiguous``: every one of them is a right answer, the bot must ask), or empty (kind ``absent``: not in the
directory, the bot must neither pick nor suggest anything).

Where the rows come from:
- full: the official name (as in the directory) and the name with the ``浙江省``/city prefix spelled differently;
- short: the directory's aliases and the short names people write that the directory does not know
  (``also_called`` in the hospital table);
- abbreviation: names shortened by the habits reps have (drop 市/县/区, 第一人民医院 → 一院, 人民医院 → 人民,
  中医医院 ↔ 中医院, 妇幼保健院 → 妇保/妇幼, university names shortened: 浙江大学 → 浙大);
- pinyin: initials of names and aliases (zdyy), full pinyin of aliases;
- typo: one homophone (what a pinyin IME offers first), one dropped character, two adjacent characters swapped
  — never on a digit (浙大一院 → 浙大院 is information lost, not a typo a matcher can undo);
- absent: famous hospitals of other provinces, and generic names (人民医院, 中医院, 第一医院 …);
- ambiguous: shared aliases and short names several hospitals answer to (市一, 康宁医院, 浙大 …); a generated
  abbreviation or initials that several hospitals produce becomes an ambiguous row too.
A generated query equal to another hospital's name or alias is dropped (it is that hospital, not a variant).
"""

from __future__ import annotations

import csv
import random
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

from pypinyin import lazy_pinyin

HERE = Path(__file__).resolve().parent
HOSPITALS = HERE / "hospitals_zhejiang.csv"
QUERIES = HERE / "hospital_queries.csv"
SEED = 11

DIGITS = set("一二三四五六七八九十〇0123456789")

# What a pinyin IME commonly offers for the same syllable (toneless pinyin checked below).
HOMOPHONES: dict[str, str] = {
    "医": "依",  # not 一: that names another hospital (浙大医院 / 浙大一院), not a typo
    "院": "远",
    "州": "洲",
    "江": "将",
    "人": "仁",
    "民": "明",
    "中": "钟",
    "心": "新",
    "第": "弟",
    "省": "生",
    "市": "是",
    "县": "现",
    "附": "付",
    "属": "数",
    "学": "雪",
    "大": "打",
    "保": "宝",
    "健": "建",
    "妇": "付",
    "幼": "有",
    "童": "同",
    "科": "可",
    "肿": "种",
    "瘤": "留",
    "康": "抗",
    "宁": "凝",
    "波": "博",
    "温": "文",
    "杭": "航",
    "嘉": "家",
    "兴": "星",
    "湖": "胡",
    "绍": "少",
    "金": "今",
    "华": "化",
    "舟": "周",
    "丽": "力",
    "水": "谁",
    "邵": "少",
    "逸": "亦",
    "夫": "肤",
    "浙": "这",
    "海": "还",
    "安": "按",
    "山": "衫",
    "平": "评",
    "阳": "杨",
    "德": "得",
    "清": "青",
    "义": "以",
    "乌": "无",
    "东": "冬",
    "永": "勇",
    "溪": "西",
    "庆": "亲",
    "元": "园",
    "龙": "隆",
    "泉": "全",
    "仙": "先",
    "居": "局",
    "临": "林",
    "玉": "预",
    "环": "还",
    "台": "抬",
    "天": "添",
    "门": "们",
    "富": "付",
    "桐": "同",
    "庐": "炉",
    "建": "见",
    "淳": "纯",
    "萧": "消",
    "余": "鱼",
    "姚": "摇",
    "慈": "词",
    "象": "向",
    "鄞": "银",
    "仑": "轮",
    "镇": "真",
    "化": "话",
    "明": "名",
    "瑞": "锐",
    "乐": "了",
    "苍": "仓",
    "南": "男",
    "善": "扇",
    "盐": "言",
    "长": "常",
    "吉": "及",
    "诸": "猪",
    "暨": "既",
    "嵊": "胜",
    "昌": "常",
    "新": "心",
    "上": "尚",
    "虞": "鱼",
    "柯": "科",
    "桥": "乔",
    "文": "闻",
    "理": "里",
    "兰": "蓝",
    "浦": "普",
    "武": "五",
    "磐": "盘",
    "衢": "渠",
    "游": "有",
    "常": "长",
    "开": "凯",
    "岱": "代",
    "泗": "四",
    "普": "浦",
    "陀": "驼",
    "博": "波",
    "爱": "碍",
    "青": "清",
    "田": "甜",
    "缙": "进",
    "云": "运",
    "遂": "岁",
    "松": "送",
    "景": "井",
    "荣": "容",
    "军": "君",
    "立": "力",
    "同": "童",
    "李": "里",
    "惠": "会",
    "利": "力",
    "眼": "演",
    "视": "是",
    "光": "广",
    "口": "扣",
    "腔": "枪",
    "儿": "而",
    "女": "努",
    "精": "经",
    "神": "深",
    "卫": "为",
    "生": "升",
    "树": "数",
    "西": "溪",
    "丁": "顶",
    "老": "劳",
    "年": "念",
    "病": "并",
    "红": "洪",
    "十": "是",
    "字": "自",
    "会": "惠",
    "结": "节",
    "合": "和",
    "国": "过",
    "际": "机",
    "皮": "批",
    "肤": "夫",
    "浔": "寻",
    "鹿": "路",
    "城": "成",
    "北": "被",
    "黄": "皇",
    "岩": "严",
    "路": "鹿",
    "育": "于",
    "英": "应",
    "洞": "动",
    "头": "投",
    "湾": "弯",
    "蓉": "容",
    "顺": "瞬",
    "泰": "太",
    "成": "城",
    "丰": "风",
}

ABSENT_FAMOUS = [
    *("北京协和医院", "协和医院", "中国医学科学院北京协和医院", "北京大学第一医院", "北大医院", "北京大学第三医院"),
    *("北医三院", "北京大学人民医院", "北大人民医院", "中国人民解放军总医院", "301医院", "解放军总医院"),
    *("首都医科大学附属北京天坛医院", "天坛医院", "北京天坛医院", "北京安贞医院", "安贞医院", "北京儿童医院"),
    *("北京积水潭医院", "积水潭", "宣武医院", "北京朝阳医院", "中日友好医院", "北京同仁医院", "同仁医院"),
    *("阜外医院", "北京阜外医院", "北京肿瘤医院", "北京中医医院", "北京世纪坛医院"),
    *("复旦大学附属中山医院", "中山医院", "复旦大学附属华山医院", "华山医院", "上海瑞金医院", "瑞金医院"),
    *("上海交通大学医学院附属瑞金医院", "仁济医院", "上海仁济医院", "上海市第一人民医院", "上海市第六人民医院"),
    *("上海六院", "上海市第十人民医院", "上海十院", "长海医院", "上海长征医院", "上海儿童医学中心"),
    *("复旦大学附属儿科医院", "上海市胸科医院", "上海市肺科医院", "新华医院上海", "上海新华医院", "上海九院"),
    *("上海市精神卫生中心", "上海中医药大学附属龙华医院", "龙华医院", "曙光医院", "上海曙光医院", "岳阳医院"),
    *("江苏省人民医院", "南京鼓楼医院", "鼓楼医院", "江苏省中医院", "南京市第一医院", "东南大学附属中大医院"),
    *(
        "苏州大学附属第一医院",
        "苏大附一院",
        "苏州市立医院",
        "无锡市人民医院",
        "常州市第一人民医院",
        "徐州医科大学附属医院",
    ),
    *("南通大学附属医院", "扬州大学附属医院", "江苏省肿瘤医院", "南京儿童医院", "南京脑科医院"),
    *(
        "四川大学华西医院",
        "华西医院",
        "华西口腔医院",
        "四川省人民医院",
        "成都市第一人民医院",
        "重庆医科大学附属第一医院",
    ),
    *("重医附一院", "西南医院", "新桥医院", "中南大学湘雅医院", "湘雅医院", "湘雅二医院", "湖南省人民医院"),
    *("华中科技大学同济医学院附属同济医院", "同济医院", "武汉协和医院", "武汉大学人民医院", "湖北省人民医院"),
    *("中山大学附属第一医院", "中山一院", "中山大学孙逸仙纪念医院", "孙逸仙医院", "广东省人民医院", "广东省中医院"),
    *("南方医院", "南方医科大学南方医院", "广州市妇女儿童医疗中心", "深圳市人民医院", "香港大学深圳医院"),
    *("郑州大学第一附属医院", "郑大一附院", "河南省人民医院", "山东大学齐鲁医院", "齐鲁医院", "山东省立医院"),
    *("青岛大学附属医院", "西安交通大学第一附属医院", "西京医院", "唐都医院", "兰州大学第一医院"),
    *("福建医科大学附属协和医院", "福建省立医院", "厦门大学附属中山医院", "厦门大学附属第一医院", "安徽省立医院"),
    *("中国科学技术大学附属第一医院", "安徽医科大学第一附属医院", "江西省人民医院", "南昌大学第一附属医院"),
    *("中国医科大学附属第一医院", "盛京医院", "吉林大学第一医院", "哈尔滨医科大学附属第一医院", "天津医科大学总医院"),
    *("天津市第一中心医院", "河北医科大学第二医院", "山西医科大学第一医院", "内蒙古医科大学附属医院"),
    *("新疆医科大学第一附属医院", "云南省第一人民医院", "昆明医科大学第一附属医院", "贵州省人民医院"),
    *("广西医科大学第一附属医院", "海南省人民医院", "宁夏医科大学总医院", "青海省人民医院", "西藏自治区人民医院"),
    *("江苏省苏北人民医院", "上海市杨浦区中心医院", "南京市中医院", "苏州市中医医院", "北京市海淀医院"),
    *("长沙市第一医院", "合肥市第一人民医院", "福州市第一医院", "深圳市儿童医院", "广州市第一人民医院"),
]
ABSENT_GENERIC = [
    *("人民医院", "第一人民医院", "中医院", "中医医院", "第一医院", "第二医院", "第三医院", "市人民医院"),
    *("县人民医院", "县中医院", "妇幼保健院", "市妇幼保健院", "儿童医院", "中心医院", "市中心医院"),
    *("省医院", "省人医", "市医院", "县医院", "区医院", "人民", "医院", "中医", "妇幼", "第一", "肿瘤医院"),
    *("口腔医院", "眼科医院", "精神卫生中心", "中西医结合医院", "骨科医院", "康复医院", "妇产医院", "附属医院"),
    *("大学附属医院", "医学院附属医院", "第一附属医院", "市第一医院", "市第一人民医院", "区人民医院", "县第一人民医院"),
    *("社区卫生服务中心", "卫生院", "乡镇卫生院", "市立医院", "第二人民医院", "第三人民医院", "第四人民医院"),
    *("第五人民医院", "第六人民医院", "妇女儿童医院", "妇保院", "市妇保", "肿瘤", "中心", "附一院"),
    *("附二院", "人民医院门诊", "中医院门诊部", "医院住院部", "市二院", "县一院", "医科大学"),
]
# Short names several hospitals in the table answer to (all of them are right; the bot must ask).
AMBIGUOUS = {
    "浙大": (
        "浙江大学医学院附属第一医院",
        "浙江大学医学院附属第二医院",
        "浙江大学医学院附属邵逸夫医院",
        "浙江大学医学院附属妇产科医院",
        "浙江大学医学院附属儿童医院",
        "浙江大学医学院附属口腔医院",
        "浙江大学医学院附属第四医院",
        "浙江大学医学院附属精神卫生中心",
        "浙江大学明州医院",
    ),
    "市一": ("杭州市第一人民医院", "宁波大学附属第一医院"),
    "市一医院": ("杭州市第一人民医院", "宁波大学附属第一医院"),
    "康宁医院": ("宁波市康宁医院", "温州市康宁医院"),
    "浙大附属医院": (
        "浙江大学医学院附属第一医院",
        "浙江大学医学院附属第二医院",
        "浙江大学医学院附属邵逸夫医院",
        "浙江大学医学院附属妇产科医院",
        "浙江大学医学院附属儿童医院",
        "浙江大学医学院附属口腔医院",
        "浙江大学医学院附属第四医院",
        "浙江大学医学院附属精神卫生中心",
    ),
    "温医附属医院": (
        "温州医科大学附属第一医院",
        "温州医科大学附属第二医院",
        "温州医科大学附属眼视光医院",
        "温州医科大学附属口腔医院",
    ),
    "温州医科大学附属医院": (
        "温州医科大学附属第一医院",
        "温州医科大学附属第二医院",
        "温州医科大学附属眼视光医院",
        "温州医科大学附属口腔医院",
    ),
    "义乌医院": ("义乌市中心医院", "义乌市中医医院", "义乌市妇幼保健院"),
    "瑞安医院": ("瑞安市人民医院", "瑞安市中医院", "瑞安市妇幼保健院"),
    "余杭医院": (
        "杭州市余杭区第一人民医院",
        "杭州市余杭区第二人民医院",
        "杭州市余杭区中医院",
        "杭州市余杭区妇幼保健院",
    ),
    "萧山": ("浙江萧山医院", "杭州市萧山区第一人民医院", "杭州市萧山区中医院", "杭州市萧山区妇幼保健院"),
    "嘉兴医院": ("嘉兴市第一医院", "嘉兴市第二医院", "嘉兴市中医医院", "嘉兴市妇幼保健院", "嘉兴市康慈医院"),
    "浙大医院": (
        "浙江大学医学院附属第一医院",
        "浙江大学医学院附属第二医院",
        "浙江大学医学院附属邵逸夫医院",
        "浙江大学医学院附属妇产科医院",
        "浙江大学医学院附属儿童医院",
        "浙江大学医学院附属口腔医院",
        "浙江大学医学院附属第四医院",
        "浙江大学医学院附属精神卫生中心",
        "浙江大学明州医院",
    ),
    "丽水医院": ("丽水市人民医院", "丽水市中心医院", "丽水市中医院", "丽水市妇幼保健院"),
    "衢州医院": ("衢州市人民医院", "衢州市中医医院", "衢州市妇幼保健院"),
    "绍兴医院": (
        "绍兴市人民医院",
        "绍兴市中心医院",
        "绍兴市中医院",
        "绍兴市妇幼保健院",
        "绍兴第二医院",
        "绍兴市第七人民医院",
    ),
    "湖州医院": (
        "湖州市中心医院",
        "湖州市第一人民医院",
        "湖州市中医院",
        "湖州市妇幼保健院",
        "湖州市第三人民医院",
        "湖州市南浔区人民医院",
    ),
    "慈溪医院": ("慈溪市人民医院", "慈溪市中医医院", "慈溪市妇幼保健院"),
    "余姚医院": ("余姚市人民医院", "余姚市中医医院", "余姚市妇幼保健院"),
    "临海医院": ("临海市第一人民医院", "临海市中医院", "临海市妇幼保健院"),
    "温岭医院": ("温岭市第一人民医院", "温岭市中医院", "温岭市妇幼保健院"),
    "诸暨医院": ("诸暨市人民医院", "诸暨市中医医院", "诸暨市妇幼保健院"),
    "东阳医院": ("东阳市人民医院", "东阳市中医院", "东阳市妇幼保健院"),
    "海宁医院": ("海宁市人民医院", "海宁市中医院", "海宁市妇幼保健院"),
}

UNIVERSITIES = {}
PLACE_SUFFIX = re.compile(r"^(.{2,6}?)(市|县|区)(?=.)")
ORDINAL_PEOPLE = re.compile(r"第([一二三四五六七八九十]+)人民医院$")
ORDINAL_HOSPITAL = re.compile(r"第([一二三四五六七八九十]+)医院$")


def norm(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PZSC")


def split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def load() -> list[dict[str, object]]:
    with HOSPITALS.open(encoding="utf-8", newline="") as fh:
        return [
            {
                "name": row["name"],
                "city": row["city"],
                "aliases": split(row["aliases"]),
                "also": split(row["also_called"]),
            }
            for row in csv.DictReader(fh)
        ]


def strip_places(name: str) -> str:
    """杭州市萧山区第一人民医院 → 萧山第一人民医院; 余姚市人民医院 → 余姚人民医院 (drop 市/县/区 and a leading city)."""
    out = name
    m = re.match(r"^(.{2,3}?)市(.{2,3}?)区(.+)$", out)
    if m:
        return m.group(2) + m.group(3)
    return PLACE_SUFFIX.sub(lambda mm: mm.group(1), out, count=1)


def abbreviations(name: str) -> list[str]:
    """The shortenings reps write for ``name`` (some may equal an alias; the caller drops those)."""
    out: list[str] = []
    base = strip_places(name)
    if base != name:
        out.append(base)
    for form in dict.fromkeys((name, base)):  # ordered: the table must not depend on string hashing
        if m := ORDINAL_PEOPLE.search(form):
            out.append(form[: m.start()] + m.group(1) + "院")  # 桐庐县第一人民医院 → 桐庐县一院
            out.append(form[: m.start()] + "第" + m.group(1) + "医院")  # → 桐庐县第一医院
        if m := ORDINAL_HOSPITAL.search(form):
            out.append(form[: m.start()] + m.group(1) + "院")  # 宁海县第一医院 → 宁海县一院
        if form.endswith("人民医院") and not ORDINAL_PEOPLE.search(form):
            out.append(form[: -len("医院")])  # 余姚人民医院 → 余姚人民
            out.append(form[: -len("人民医院")] + "人医")  # 余姚人医
        if form.endswith("中医医院"):
            out.append(form[: -len("中医医院")] + "中医院")
            out.append(form[: -len("医院")])  # 余姚中医
        elif form.endswith("中医院"):
            out.append(form[: -len("中医院")] + "中医医院")
            out.append(form[:-1])  # 温州市中医
        if form.endswith("妇幼保健院"):
            out.append(form[: -len("妇幼保健院")] + "妇幼")
            out.append(form[: -len("妇幼保健院")] + "妇保院")
        if form.endswith("中心医院"):
            out.append(form[: -len("医院")])  # 湖州中心
    for long, short in UNIVERSITIES.items():
        if name.startswith(long):
            rest = name[len(long) :]
            out.append(short + rest)  # 浙大医学院附属第一医院, 温医大附属第一医院
            rest_plain = rest.replace("医学院", "").replace("附属", "")
            out.append(short + rest_plain)  # 浙大第一医院, 浙大邵逸夫医院
            if m := ORDINAL_HOSPITAL.search(rest_plain):
                out.append(short + m.group(1) + "院")  # 浙大一院, 温医大一院
            break
    if name.startswith("浙江省"):
        out.append("浙江" + name[len("浙江省") :])  # 浙江省肿瘤医院 → 浙江肿瘤医院
    return out


def toneless(text: str) -> list[str]:
    return lazy_pinyin(text)


def typos(text: str, rng: random.Random) -> list[tuple[str, str]]:
    """(typo, how) — one homophone, one dropped and one swapped pair, chosen at random positions."""
    out: list[tuple[str, str]] = []
    positions = [i for i, ch in enumerate(text) if ch not in DIGITS]
    # homophone
    subs = [i for i in positions if text[i] in HOMOPHONES and len(HOMOPHONES[text[i]]) == 1]
    rng.shuffle(subs)
    for i in subs:
        sub = HOMOPHONES[text[i]]
        candidate = text[:i] + sub + text[i + 1 :]
        if toneless(candidate) == toneless(text):
            out.append((candidate, "homophone"))
            break
    if len(text) >= 6:
        # 中 of 中医院 carries the kind of hospital: 临海市医院 is any of them, not a typo of 临海市中医院.
        drops = [i for i in positions if i > 0 and text[i : i + 2] != "中医"]
        i = rng.choice(drops)
        out.append((text[:i] + text[i + 1 :], "dropped"))
    if len(text) >= 5:
        pairs = [i for i in positions if i + 1 < len(text) and text[i + 1] not in DIGITS and text[i] != text[i + 1]]
        if pairs:
            i = rng.choice(pairs)
            out.append((text[:i] + text[i + 1] + text[i] + text[i + 2 :], "swapped"))
    return out


def build_rows() -> list[tuple[str, str, str]]:
    """The table's rows (query, expected, kind), in file order."""
    rng = random.Random(SEED)
    hospitals = load()
    owners: dict[str, set[str]] = defaultdict(set)  # normalized key (name, alias, short name) → hospitals
    for h in hospitals:
        for key in (h["name"], *h["aliases"], *h["also"]):  # type: ignore[misc]
            owners[norm(str(key))].add(str(h["name"]))
    directory_initials: dict[str, set[str]] = defaultdict(set)
    directory_pinyin: dict[str, set[str]] = defaultdict(set)  # 浙大二院 and 浙大儿院 both read zhedaeryuan
    for h in hospitals:
        for key in (h["name"], *h["aliases"]):  # type: ignore[misc]
            directory_initials["".join(s[0] for s in lazy_pinyin(norm(str(key))))].add(str(h["name"]))
            directory_pinyin["".join(lazy_pinyin(norm(str(key))))].add(str(h["name"]))

    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()

    def add(query: str, expected: set[str] | tuple[str, ...], kind: str) -> None:
        key = norm(query)
        if not key or key in seen:
            return
        seen.add(key)
        rows.append((query, "|".join(sorted(expected)) if len(expected) > 1 else "".join(expected), kind))

    for query, names in AMBIGUOUS.items():
        add(query, names, "ambiguous" if len(names) > 1 else "short")

    derived: dict[str, set[str]] = defaultdict(set)
    for h in hospitals:
        for form in abbreviations(str(h["name"])):
            derived[norm(form)].add(str(h["name"]))

    for h in hospitals:
        name = str(h["name"])
        add(name, {name}, "full")
        for alias in (*h["aliases"], *h["also"]):  # type: ignore[misc]
            alias = str(alias)
            if owners[norm(alias)] == {name}:
                add(alias, {name}, "short")
        for form in abbreviations(name):
            key = norm(form)
            if key in owners and owners[key] != {name}:
                continue  # another hospital's name or short name
            names = derived[key] | owners.get(key, set())
            add(form, names, "abbreviation" if len(names) == 1 else "ambiguous")
        for key in (name, *h["aliases"]):  # type: ignore[misc]
            initials = "".join(s[0] for s in lazy_pinyin(norm(str(key))))
            if 3 <= len(initials) <= 8 and initials.isascii():  # nobody types 14 initials
                names = directory_initials[initials]
                add(initials, names, "pinyin" if len(names) == 1 else "ambiguous")
        for alias in h["aliases"]:  # type: ignore[misc]
            full = "".join(lazy_pinyin(norm(str(alias))))
            if full.isascii() and len(full) >= 6 and norm(full) not in seen:
                names = directory_pinyin[full]
                add(full, names, "pinyin" if len(names) == 1 else "ambiguous")
        for text in (name, *h["aliases"], *h["also"]):  # type: ignore[misc]
            text = str(text)
            if len(text) < 3:
                continue
            made = typos(text, rng)
            if text != name and made:  # every kind of typo on the name, one of them on each short name
                made = [rng.choice(made)]
            for typo, _how in made:
                key = norm(typo)
                if key in owners or key in derived:
                    continue  # the typo spells another key (or a shortening): not a typo of this one
                add(typo, {name}, "typo")

    for query in (*ABSENT_FAMOUS, *ABSENT_GENERIC):
        if norm(query) in owners:
            raise SystemExit(f"absent query {query!r} is in the hospital table")
        add(query, set(), "absent")

    return rows


def main() -> None:
    rows = build_rows()
    with QUERIES.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("query", "expected", "kind"))
        writer.writerows(rows)
    counts: dict[str, int] = defaultdict(int)
    for _q, _e, kind in rows:
        counts[kind] += 1
    print(len(rows), dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
