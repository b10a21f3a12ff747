"""Build fb_sandbox/data/targeting_geo.json and targeting_categories.json (run once; output is committed).

    .venv/bin/python fb_sandbox/data/build_targeting_data.py

Sources: countries and regions from pycountry (ISO 3166-1 and 3166-2, top-level subdivisions); cities, their
approximate populations, zip codes and the category names below are hand-curated from Facebook's public ad
targeting vocabulary. Keys and ids are derived from names by hashing, so a rebuild gives the same data.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pycountry

OUT = Path(__file__).parent

# Approximate Facebook-reachable adults, millions (roughly population x penetration). Others get a small default.
AUDIENCE_M = {
    "US": 240, "IN": 380, "BR": 130, "ID": 130, "MX": 95, "PH": 85, "VN": 70, "TH": 52, "EG": 50, "BD": 52,
    "PK": 45, "GB": 48, "TR": 40, "FR": 42, "DE": 38, "IT": 36, "CO": 38, "NG": 35, "AR": 30, "JP": 20,
    "ES": 28, "PE": 25, "CA": 28, "MY": 24, "DZ": 24, "IQ": 23, "MA": 22, "SA": 22, "KR": 15, "PL": 20,
    "AU": 19, "UA": 15, "VE": 15, "KE": 12, "RU": 8, "CL": 14, "ZA": 24, "TW": 18, "NL": 12, "EC": 12,
    "GT": 9, "BO": 7, "RO": 11, "SE": 7, "BE": 8, "PT": 7, "CZ": 6, "GR": 7, "HU": 6, "AE": 9, "IL": 6,
    "CH": 5, "AT": 5, "DK": 4.5, "FI": 3.5, "NO": 4, "IE": 3.5, "NZ": 3.8, "SG": 4.5, "HK": 5, "DO": 7,
    "HN": 5, "SV": 4, "NI": 3.5, "CR": 3.8, "PA": 3, "PY": 4, "UY": 2.6, "TN": 8, "JO": 6, "LB": 3.5,
    "GH": 8, "CI": 7, "SN": 4, "CM": 5, "TZ": 7, "UG": 4, "ET": 8, "MM": 25, "KH": 11, "NP": 12, "LK": 8,
    "CN": 2, "IR": 1, "KP": 0.01, "SK": 3, "BG": 4, "RS": 4, "HR": 2.3, "SI": 1.2, "LT": 1.8, "LV": 1.1,
    "EE": 0.8, "BY": 1.5, "KZ": 5, "UZ": 3, "AZ": 3, "GE": 2.5, "AM": 1.5, "QA": 2.5, "KW": 3, "OM": 3,
    "BH": 1.2, "YE": 3, "SY": 6, "LY": 4, "SD": 5, "AO": 4, "MZ": 3, "ZW": 2, "ZM": 2.5, "PR": 2.3,
}
POPULOUS_COUNTRIES_WITH_DATA = ("US", "CA", "GB", "DE", "FR", "ES", "IT", "BR", "MX", "IN", "AU", "JP", "NL",
                                "PL", "SE")

# (city, ISO 3166-2 region, population in thousands)
CITIES = {
    "US": [("New York", "US-NY", 8300), ("Los Angeles", "US-CA", 3900), ("Chicago", "US-IL", 2700),
           ("Houston", "US-TX", 2300), ("Phoenix", "US-AZ", 1600), ("Philadelphia", "US-PA", 1600),
           ("San Antonio", "US-TX", 1500), ("San Diego", "US-CA", 1400), ("Dallas", "US-TX", 1300),
           ("Austin", "US-TX", 960), ("San Jose", "US-CA", 1000), ("Jacksonville", "US-FL", 950),
           ("Columbus", "US-OH", 900), ("Charlotte", "US-NC", 870), ("San Francisco", "US-CA", 810),
           ("Indianapolis", "US-IN", 880), ("Seattle", "US-WA", 750), ("Denver", "US-CO", 710),
           ("Washington", "US-DC", 690), ("Boston", "US-MA", 650), ("Nashville", "US-TN", 690),
           ("Detroit", "US-MI", 630), ("Portland", "US-OR", 640), ("Las Vegas", "US-NV", 650),
           ("Miami", "US-FL", 450), ("Atlanta", "US-GA", 500), ("Minneapolis", "US-MN", 425),
           ("New Orleans", "US-LA", 380), ("Palo Alto", "US-CA", 68), ("Salt Lake City", "US-UT", 200)],
    "CA": [("Toronto", "CA-ON", 2800), ("Montreal", "CA-QC", 1760), ("Calgary", "CA-AB", 1300),
           ("Ottawa", "CA-ON", 1000), ("Edmonton", "CA-AB", 1000), ("Winnipeg", "CA-MB", 750),
           ("Mississauga", "CA-ON", 720), ("Vancouver", "CA-BC", 660), ("Brampton", "CA-ON", 650),
           ("Hamilton", "CA-ON", 570), ("Quebec City", "CA-QC", 550), ("Surrey", "CA-BC", 570),
           ("Halifax", "CA-NS", 440), ("Victoria", "CA-BC", 92), ("Regina", "CA-SK", 230),
           ("Saskatoon", "CA-SK", 270), ("St. John's", "CA-NL", 110), ("Fredericton", "CA-NB", 63)],
    "GB": [("London", "GB-ENG", 8900), ("Birmingham", "GB-ENG", 1140), ("Manchester", "GB-ENG", 550),
           ("Leeds", "GB-ENG", 800), ("Glasgow", "GB-SCT", 630), ("Liverpool", "GB-ENG", 490),
           ("Bristol", "GB-ENG", 470), ("Sheffield", "GB-ENG", 580), ("Edinburgh", "GB-SCT", 530),
           ("Cardiff", "GB-WLS", 360), ("Belfast", "GB-NIR", 340), ("Newcastle upon Tyne", "GB-ENG", 300),
           ("Nottingham", "GB-ENG", 330), ("Leicester", "GB-ENG", 370), ("Southampton", "GB-ENG", 250),
           ("Aberdeen", "GB-SCT", 200), ("Swansea", "GB-WLS", 240), ("Oxford", "GB-ENG", 160),
           ("Cambridge", "GB-ENG", 145), ("Brighton", "GB-ENG", 290)],
    "DE": [("Berlin", "DE-BE", 3700), ("Hamburg", "DE-HH", 1900), ("Munich", "DE-BY", 1500),
           ("Cologne", "DE-NW", 1090), ("Frankfurt", "DE-HE", 760), ("Stuttgart", "DE-BW", 630),
           ("Düsseldorf", "DE-NW", 620), ("Leipzig", "DE-SN", 600), ("Dortmund", "DE-NW", 590),
           ("Essen", "DE-NW", 580), ("Bremen", "DE-HB", 570), ("Dresden", "DE-SN", 560),
           ("Hanover", "DE-NI", 540), ("Nuremberg", "DE-BY", 520), ("Bonn", "DE-NW", 330),
           ("Mannheim", "DE-BW", 310), ("Kiel", "DE-SH", 250), ("Mainz", "DE-RP", 220),
           ("Erfurt", "DE-TH", 215), ("Rostock", "DE-MV", 210), ("Potsdam", "DE-BB", 185),
           ("Saarbrücken", "DE-SL", 180), ("Magdeburg", "DE-ST", 240), ("Wiesbaden", "DE-HE", 280)],
    "FR": [("Paris", "FR-IDF", 2100), ("Marseille", "FR-PAC", 870), ("Lyon", "FR-ARA", 520),
           ("Toulouse", "FR-OCC", 490), ("Nice", "FR-PAC", 340), ("Nantes", "FR-PDL", 320),
           ("Montpellier", "FR-OCC", 300), ("Strasbourg", "FR-GES", 290), ("Bordeaux", "FR-NAQ", 260),
           ("Lille", "FR-HDF", 235), ("Rennes", "FR-BRE", 220), ("Reims", "FR-GES", 180),
           ("Toulon", "FR-PAC", 180), ("Grenoble", "FR-ARA", 160), ("Dijon", "FR-BFC", 160),
           ("Angers", "FR-PDL", 155), ("Le Havre", "FR-NOR", 165), ("Tours", "FR-CVL", 136),
           ("Rouen", "FR-NOR", 112), ("Ajaccio", "FR-20R", 72)],
    "ES": [("Madrid", "ES-MD", 3300), ("Barcelona", "ES-CT", 1600), ("Valencia", "ES-VC", 800),
           ("Seville", "ES-AN", 680), ("Zaragoza", "ES-AR", 670), ("Málaga", "ES-AN", 580),
           ("Murcia", "ES-MC", 460), ("Palma", "ES-IB", 420), ("Las Palmas de Gran Canaria", "ES-CN", 380),
           ("Bilbao", "ES-PV", 345), ("Alicante", "ES-VC", 340), ("Córdoba", "ES-AN", 320),
           ("Valladolid", "ES-CL", 300), ("Vigo", "ES-GA", 295), ("Gijón", "ES-AS", 270),
           ("A Coruña", "ES-GA", 245), ("Granada", "ES-AN", 230), ("Pamplona", "ES-NC", 200),
           ("Santander", "ES-CB", 172), ("Logroño", "ES-RI", 150)],
    "IT": [("Rome", "IT-62", 2800), ("Milan", "IT-25", 1400), ("Naples", "IT-72", 920), ("Turin", "IT-21", 850),
           ("Palermo", "IT-82", 630), ("Genoa", "IT-42", 560), ("Bologna", "IT-45", 390), ("Florence", "IT-52", 370),
           ("Bari", "IT-75", 315), ("Catania", "IT-82", 300), ("Venice", "IT-34", 255), ("Verona", "IT-34", 255),
           ("Messina", "IT-82", 220), ("Padua", "IT-34", 210), ("Trieste", "IT-36", 200),
           ("Brescia", "IT-25", 196), ("Parma", "IT-45", 196), ("Cagliari", "IT-88", 150),
           ("Perugia", "IT-55", 165), ("Pescara", "IT-65", 118)],
    "BR": [("São Paulo", "BR-SP", 12300), ("Rio de Janeiro", "BR-RJ", 6700), ("Brasília", "BR-DF", 3000),
           ("Salvador", "BR-BA", 2900), ("Fortaleza", "BR-CE", 2700), ("Belo Horizonte", "BR-MG", 2500),
           ("Manaus", "BR-AM", 2200), ("Curitiba", "BR-PR", 1900), ("Recife", "BR-PE", 1650),
           ("Goiânia", "BR-GO", 1500), ("Belém", "BR-PA", 1500), ("Porto Alegre", "BR-RS", 1480),
           ("Guarulhos", "BR-SP", 1380), ("Campinas", "BR-SP", 1200), ("São Luís", "BR-MA", 1100),
           ("Maceió", "BR-AL", 1000), ("Natal", "BR-RN", 890), ("Florianópolis", "BR-SC", 500),
           ("Vitória", "BR-ES", 365), ("João Pessoa", "BR-PB", 820)],
    "MX": [("Mexico City", "MX-CMX", 9200), ("Guadalajara", "MX-JAL", 1500), ("Monterrey", "MX-NLE", 1140),
           ("Puebla", "MX-PUE", 1700), ("Tijuana", "MX-BCN", 1900), ("León", "MX-GUA", 1700),
           ("Zapopan", "MX-JAL", 1480), ("Ciudad Juárez", "MX-CHH", 1500), ("Mérida", "MX-YUC", 990),
           ("San Luis Potosí", "MX-SLP", 910), ("Aguascalientes", "MX-AGU", 950), ("Querétaro", "MX-QUE", 1050),
           ("Cancún", "MX-ROO", 890), ("Chihuahua", "MX-CHH", 940), ("Hermosillo", "MX-SON", 930),
           ("Culiacán", "MX-SIN", 1000), ("Morelia", "MX-MIC", 850), ("Veracruz", "MX-VER", 610),
           ("Toluca", "MX-MEX", 910), ("Oaxaca", "MX-OAX", 270)],
    "IN": [("Mumbai", "IN-MH", 12400), ("Delhi", "IN-DL", 11000), ("Bangalore", "IN-KA", 8400),
           ("Hyderabad", "IN-TS", 6900), ("Ahmedabad", "IN-GJ", 5600), ("Chennai", "IN-TN", 4600),
           ("Kolkata", "IN-WB", 4500), ("Surat", "IN-GJ", 4500), ("Pune", "IN-MH", 3100), ("Jaipur", "IN-RJ", 3000),
           ("Lucknow", "IN-UP", 2800), ("Kanpur", "IN-UP", 2700), ("Nagpur", "IN-MH", 2400),
           ("Indore", "IN-MP", 1960), ("Bhopal", "IN-MP", 1800), ("Patna", "IN-BR", 1680),
           ("Ludhiana", "IN-PB", 1600), ("Kochi", "IN-KL", 600), ("Chandigarh", "IN-CH", 960),
           ("Guwahati", "IN-AS", 960), ("Visakhapatnam", "IN-AP", 1730), ("Bhubaneswar", "IN-OD", 840)],
    "AU": [("Sydney", "AU-NSW", 5300), ("Melbourne", "AU-VIC", 5100), ("Brisbane", "AU-QLD", 2600),
           ("Perth", "AU-WA", 2100), ("Adelaide", "AU-SA", 1400), ("Gold Coast", "AU-QLD", 700),
           ("Canberra", "AU-ACT", 460), ("Newcastle", "AU-NSW", 500), ("Hobart", "AU-TAS", 250),
           ("Darwin", "AU-NT", 150), ("Geelong", "AU-VIC", 280), ("Townsville", "AU-QLD", 180),
           ("Cairns", "AU-QLD", 155), ("Wollongong", "AU-NSW", 310)],
    "JP": [("Tokyo", "JP-13", 14000), ("Yokohama", "JP-14", 3750), ("Osaka", "JP-27", 2750),
           ("Nagoya", "JP-23", 2300), ("Sapporo", "JP-01", 1960), ("Fukuoka", "JP-40", 1600),
           ("Kobe", "JP-28", 1520), ("Kawasaki", "JP-14", 1540), ("Kyoto", "JP-26", 1460),
           ("Saitama", "JP-11", 1340), ("Hiroshima", "JP-34", 1200), ("Sendai", "JP-04", 1090),
           ("Chiba", "JP-12", 980), ("Kitakyushu", "JP-40", 930), ("Sakai", "JP-27", 820),
           ("Niigata", "JP-15", 780), ("Hamamatsu", "JP-22", 790), ("Kumamoto", "JP-43", 740),
           ("Okayama", "JP-33", 720), ("Naha", "JP-47", 320)],
    "NL": [("Amsterdam", "NL-NH", 920), ("Rotterdam", "NL-ZH", 660), ("The Hague", "NL-ZH", 560),
           ("Utrecht", "NL-UT", 370), ("Eindhoven", "NL-NB", 240), ("Groningen", "NL-GR", 235),
           ("Tilburg", "NL-NB", 225), ("Almere", "NL-FL", 220), ("Breda", "NL-NB", 185),
           ("Nijmegen", "NL-GE", 180), ("Arnhem", "NL-GE", 165), ("Haarlem", "NL-NH", 165),
           ("Enschede", "NL-OV", 160), ("Maastricht", "NL-LI", 122), ("Leiden", "NL-ZH", 125),
           ("Zwolle", "NL-OV", 132), ("Leeuwarden", "NL-FR", 125), ("Assen", "NL-DR", 69),
           ("Middelburg", "NL-ZE", 49)],
    "PL": [("Warsaw", "PL-14", 1860), ("Kraków", "PL-12", 800), ("Łódź", "PL-10", 660),
           ("Wrocław", "PL-02", 675), ("Poznań", "PL-30", 540), ("Gdańsk", "PL-22", 485),
           ("Szczecin", "PL-32", 390), ("Bydgoszcz", "PL-04", 330), ("Lublin", "PL-06", 335),
           ("Białystok", "PL-20", 295), ("Katowice", "PL-24", 285), ("Gdynia", "PL-22", 245),
           ("Rzeszów", "PL-18", 197), ("Toruń", "PL-04", 195), ("Kielce", "PL-26", 185),
           ("Olsztyn", "PL-28", 170), ("Opole", "PL-16", 127), ("Zielona Góra", "PL-08", 140)],
    "SE": [("Stockholm", "SE-AB", 980), ("Gothenburg", "SE-O", 600), ("Malmö", "SE-M", 350),
           ("Uppsala", "SE-C", 240), ("Västerås", "SE-U", 130), ("Örebro", "SE-T", 125),
           ("Linköping", "SE-E", 115), ("Helsingborg", "SE-M", 115), ("Jönköping", "SE-F", 100),
           ("Norrköping", "SE-E", 97), ("Lund", "SE-M", 95), ("Umeå", "SE-AC", 90), ("Gävle", "SE-X", 77),
           ("Luleå", "SE-BD", 50), ("Karlstad", "SE-S", 66), ("Växjö", "SE-G", 70)],
}

# (country, city, zip codes): real codes of these cities (USPS ZIPs, French/German/Australian postcodes,
# UK and Canadian outward codes); a few numbers inside the US ranges may be unassigned.
ZIPS = [
    ("US", "New York", [f"{n:05d}" for n in range(10001, 10041)]),
    ("US", "Chicago", [f"{n:05d}" for n in range(60601, 60662) if n not in (60635, 60648, 60650)]),
    ("US", "Los Angeles", [f"{n:05d}" for n in range(90001, 90069)]),
    ("US", "San Francisco", [f"{n:05d}" for n in (94102, 94103, 94104, 94105, 94107, 94108, 94109, 94110, 94111,
                                                  94112, 94114, 94115, 94116, 94117, 94118, 94121, 94122, 94123,
                                                  94124, 94127, 94129, 94130, 94131, 94132, 94133, 94134, 94158)]),
    ("US", "Palo Alto", ["94301", "94302", "94303", "94304", "94305", "94306"]),
    ("US", "Seattle", [f"{n:05d}" for n in (98101, 98102, 98103, 98104, 98105, 98106, 98107, 98108, 98109,
                                            98112, 98115, 98116, 98117, 98118, 98119, 98121, 98122, 98125,
                                            98126, 98133, 98134, 98136, 98144, 98146, 98154, 98164, 98177,
                                            98178, 98195, 98199)]),
    ("US", "Boston", ["02108", "02109", "02110", "02111", "02113", "02114", "02115", "02116", "02118", "02119",
                      "02120", "02121", "02122", "02124", "02125", "02126", "02127", "02128", "02129", "02130",
                      "02131", "02132", "02134", "02135", "02136", "02199", "02210", "02215"]),
    ("US", "Houston", [f"{n:05d}" for n in range(77002, 77100, 2)]),
    ("US", "Miami", [f"{n:05d}" for n in (33125, 33126, 33127, 33128, 33129, 33130, 33131, 33132, 33133,
                                          33134, 33135, 33136, 33137, 33138, 33142, 33144, 33145, 33146,
                                          33147, 33150, 33155, 33165, 33174, 33175, 33176)]),
    ("US", "Austin", [f"{n:05d}" for n in (78701, 78702, 78703, 78704, 78705, 78721, 78722, 78723, 78724,
                                           78725, 78726, 78727, 78728, 78729, 78730, 78731, 78732, 78733,
                                           78734, 78735, 78736, 78737, 78738, 78739, 78741, 78744, 78745,
                                           78746, 78747, 78748, 78749, 78750, 78751, 78752, 78753, 78754,
                                           78756, 78757, 78758, 78759)]),
    ("FR", "Paris", [f"{n}" for n in range(75001, 75021)]),
    ("FR", "Lyon", [f"{n}" for n in range(69001, 69010)]),
    ("FR", "Marseille", [f"{n}" for n in range(13001, 13017)]),
    ("DE", "Berlin", ["10115", "10117", "10119", "10178", "10179", "10243", "10245", "10247", "10249", "10315",
                      "10317", "10318", "10319", "10365", "10367", "10369", "10405", "10407", "10409", "10435",
                      "10437", "10439", "10551", "10553", "10555", "10557", "10559", "10585", "10587", "10589",
                      "10623", "10625", "10627", "10629", "10707", "10709", "10711", "10713", "10715", "10717",
                      "10719", "10777", "10779", "10781", "10783", "10785", "10787", "10789", "10823", "10825",
                      "10827", "10829", "10961", "10963", "10965", "10967", "10969", "10997", "10999"]),
    ("DE", "Munich", ["80331", "80333", "80335", "80336", "80337", "80339", "80469", "80538", "80539", "80634",
                      "80636", "80637", "80638", "80639", "80686", "80687", "80689", "80796", "80797", "80798",
                      "80799", "80801", "80802", "80803", "80804", "80805", "80807", "80809"]),
    ("GB", "London", ["EC1A", "EC1M", "EC1N", "EC1R", "EC1V", "EC2A", "EC2M", "EC2N", "EC2R", "EC2V", "EC2Y",
                      "EC3A", "EC3M", "EC3N", "EC3R", "EC3V", "EC4A", "EC4M", "EC4N", "EC4R", "EC4V", "EC4Y",
                      "WC1A", "WC1B", "WC1E", "WC1H", "WC1N", "WC1R", "WC1V", "WC1X", "WC2A", "WC2B", "WC2E",
                      "WC2H", "WC2N", "WC2R", "SW1A", "SW1E", "SW1H", "SW1P", "SW1V", "SW1W", "SW1X", "SW1Y",
                      *[f"E{n}" for n in range(1, 19)], *[f"N{n}" for n in range(1, 23)],
                      *[f"NW{n}" for n in range(1, 12)], *[f"SE{n}" for n in range(1, 29)],
                      *[f"SW{n}" for n in range(2, 21)], *[f"W{n}" for n in range(2, 15)]]),
    ("CA", "Toronto", ["M4W", "M4X", "M4Y", "M5A", "M5B", "M5C", "M5E", "M5G", "M5H", "M5J", "M5K", "M5L",
                       "M5M", "M5N", "M5P", "M5R", "M5S", "M5T", "M5V", "M5X", "M6G", "M6H", "M6J", "M6K"]),
    ("CA", "Vancouver", ["V5K", "V5L", "V5M", "V5N", "V5P", "V5R", "V5S", "V5T", "V5V", "V5W", "V5X", "V5Y",
                         "V5Z", "V6A", "V6B", "V6C", "V6E", "V6G", "V6H", "V6J", "V6K", "V6L", "V6M", "V6N"]),
    ("AU", "Sydney", [str(n) for n in range(2000, 2012)]),
    ("AU", "Melbourne", [str(n) for n in range(3000, 3013)]),
]

# Detailed targeting: (path under its root, [(name, audience in millions), ...]); topic = path[0].
INTERESTS = [
    (["Business and industry"], [
        ("Advertising", 520), ("Agriculture", 310), ("Architecture", 390), ("Aviation", 210), ("Banking", 330),
        ("Construction", 420), ("Design", 680), ("Economics", 290), ("Engineering", 380),
        ("Entrepreneurship", 610), ("Health care", 350), ("Higher education", 560), ("Management", 290),
        ("Marketing", 640), ("Nursing", 160), ("Personal finance", 220), ("Real estate", 470), ("Retail", 270),
        ("Sales", 300), ("Science", 590), ("Small business", 650), ("Digital marketing", 450),
        ("E-commerce", 380), ("Investment", 420), ("Startup company", 150)]),
    (["Entertainment", "Games"], [
        ("Action games", 380), ("Board games", 190), ("Browser games", 120), ("Card games", 170),
        ("Casino games", 160), ("First-person shooter games", 140), ("Gambling", 210),
        ("Massively multiplayer online games", 160), ("Online games", 480), ("Puzzle video games", 260),
        ("Role-playing games", 190), ("Simulation games", 130), ("Sports games", 230), ("Strategy games", 210),
        ("Video games", 920), ("Word games", 90)]),
    (["Entertainment", "Live events"], [
        ("Concerts", 350), ("Festivals", 320), ("Nightclubs", 210), ("Parties", 260), ("Music festivals", 230)]),
    (["Entertainment", "Movies"], [
        ("Action movies", 720), ("Animated movies", 370), ("Anime movies", 190), ("Bollywood movies", 300),
        ("Comedy movies", 640), ("Documentary films", 230), ("Drama movies", 470), ("Fantasy movies", 290),
        ("Horror movies", 480), ("Musical theatre", 150), ("Science fiction movies", 350),
        ("Thriller movies", 320)]),
    (["Entertainment", "Music"], [
        ("Blues music", 120), ("Classical music", 230), ("Country music", 190), ("Dance music", 510),
        ("Electronic music", 330), ("Gospel music", 140), ("Heavy metal music", 150), ("Hip hop music", 470),
        ("Jazz music", 210), ("Music videos", 310), ("Pop music", 720), ("Rhythm and blues music", 270),
        ("Rock music", 600), ("Soul music", 220)]),
    (["Entertainment", "Reading"], [
        ("Books", 690), ("Comics", 280), ("E-books", 130), ("Fiction books", 160), ("Literature", 340),
        ("Magazines", 310), ("Manga", 190), ("Mystery fiction", 110), ("Newspapers", 260),
        ("Non-fiction books", 100)]),
    (["Entertainment", "TV"], [
        ("Game shows", 260), ("Reality TV", 330), ("TV comedies", 210), ("TV talkshows", 230)]),
    (["Family and relationships"], [
        ("Dating", 330), ("Family", 1100), ("Fatherhood", 180), ("Friendship", 510), ("Marriage", 390),
        ("Motherhood", 340), ("Parenting", 460), ("Weddings", 290)]),
    (["Fitness and wellness"], [
        ("Bodybuilding", 280), ("Meditation", 210), ("Nutrition", 350), ("Physical exercise", 470),
        ("Physical fitness", 620), ("Running", 310), ("Weight training", 260), ("Yoga", 300), ("Zumba", 120),
        ("Pilates", 95), ("Dieting", 200)]),
    (["Food and drink", "Alcoholic beverages"], [("Beer", 330), ("Distilled beverage", 130), ("Wine", 360)]),
    (["Food and drink", "Beverages"], [
        ("Coffee", 570), ("Energy drinks", 190), ("Juice", 150), ("Soft drinks", 240), ("Tea", 330)]),
    (["Food and drink", "Cooking"], [("Baking", 300), ("Recipes", 410)]),
    (["Food and drink", "Cuisine"], [
        ("Chinese cuisine", 200), ("French cuisine", 140), ("German cuisine", 60), ("Greek cuisine", 70),
        ("Indian cuisine", 210), ("Italian cuisine", 310), ("Japanese cuisine", 190), ("Korean cuisine", 120),
        ("Latin American cuisine", 110), ("Mexican cuisine", 230), ("Middle Eastern cuisine", 110),
        ("Spanish cuisine", 90), ("Thai cuisine", 130), ("Vegetarianism", 210)]),
    (["Food and drink", "Food"], [
        ("Barbecue", 250), ("Chocolate", 380), ("Desserts", 420), ("Fast food", 400), ("Organic food", 190),
        ("Pizza", 400), ("Seafood", 260), ("Veganism", 180)]),
    (["Food and drink", "Restaurants"], [
        ("Coffeehouses", 200), ("Diners", 90), ("Fast casual restaurants", 80), ("Fast food restaurants", 230)]),
    (["Hobbies and activities", "Arts and music"], [
        ("Acting", 250), ("Crafts", 300), ("Dance", 520), ("Drawing", 320), ("Drums", 110), ("Fine art", 150),
        ("Guitar", 270), ("Painting", 340), ("Performing arts", 210), ("Photography", 640), ("Sculpture", 90),
        ("Singing", 380), ("Writing", 300)]),
    (["Hobbies and activities", "Home and garden"], [
        ("Do it yourself (DIY)", 380), ("Furniture", 390), ("Gardening", 350), ("Home Appliances", 260),
        ("Home improvement", 300), ("Interior design", 420)]),
    (["Hobbies and activities", "Pets"], [
        ("Birds", 170), ("Cats", 440), ("Dogs", 560), ("Fish", 160), ("Horses", 170), ("Pet food", 100),
        ("Rabbits", 80), ("Reptiles", 60)]),
    (["Hobbies and activities", "Politics and social issues"], [
        ("Charity and causes", 240), ("Community issues", 220), ("Law", 310), ("Politics", 430),
        ("Volunteering", 240)]),
    (["Hobbies and activities", "Travel"], [
        ("Adventure travel", 330), ("Air travel", 250), ("Beaches", 420), ("Car rentals", 60), ("Cruises", 150),
        ("Ecotourism", 80), ("Hotels", 290), ("Lakes", 190), ("Mountains", 260), ("Nature", 820),
        ("Theme parks", 130), ("Tourism", 500), ("Travel", 900), ("Vacations", 450)]),
    (["Hobbies and activities", "Vehicles"], [
        ("Automobiles", 650), ("Boats", 180), ("Electric vehicle", 110), ("Hybrids", 45), ("Minivans", 30),
        ("Motorcycles", 320), ("Recreational vehicles", 40), ("Sport utility vehicles", 110), ("Scooters", 120),
        ("Trucks", 240)]),
    (["Shopping and fashion", "Beauty"], [
        ("Beauty salons", 200), ("Cosmetics", 470), ("Fragrances", 160), ("Hair products", 220), ("Spas", 180),
        ("Tattoos", 230)]),
    (["Shopping and fashion", "Clothing"], [
        ("Children's clothing", 140), ("Men's clothing", 260), ("Shoes", 420), ("Women's clothing", 300)]),
    (["Shopping and fashion", "Fashion accessories"], [
        ("Dresses", 190), ("Handbags", 200), ("Jewelry", 300), ("Sunglasses", 140)]),
    (["Shopping and fashion", "Shopping"], [
        ("Boutiques", 170), ("Coupons", 170), ("Discount stores", 120), ("Luxury goods", 190),
        ("Online shopping", 760), ("Shopping malls", 260)]),
    (["Shopping and fashion"], [("Fashion", 900), ("Fashion design", 190), ("Toys", 210)]),
    (["Sports and outdoors", "Outdoor recreation"], [
        ("Boating", 150), ("Camping", 240), ("Fishing", 280), ("Horseback riding", 90), ("Hunting", 160),
        ("Mountain biking", 130), ("Surfing", 110)]),
    (["Sports and outdoors", "Sports"], [
        ("American football", 210), ("Association football (Soccer)", 780), ("Auto racing", 240),
        ("Baseball", 160), ("Basketball", 520), ("Bowling", 60), ("Boxing", 300), ("Cricket", 280),
        ("Cycling", 360), ("Golf", 180), ("Ice hockey", 90), ("Marathons", 80), ("Martial arts", 260),
        ("Motorsports", 210), ("Skateboarding", 110), ("Skiing", 130), ("Snowboarding", 80), ("Swimming", 300),
        ("Tennis", 260), ("Volleyball", 230)]),
    (["Technology", "Computers"], [
        ("Computer memory", 50), ("Computer monitors", 60), ("Computer processors", 45), ("Computer servers", 35),
        ("Desktop computers", 120), ("Free software", 90), ("Hard drives", 45), ("Network storage", 30),
        ("Software", 400), ("Tablet computers", 160)]),
    (["Technology", "Consumer electronics"], [
        ("Audio equipment", 180), ("Camcorders", 35), ("Cameras", 200), ("E-book readers", 50),
        ("GPS devices", 50), ("Game consoles", 280), ("Headphones", 210), ("Mobile phones", 720),
        ("Smartphones", 620), ("Televisions", 330)]),
    (["Technology"], [
        ("Artificial intelligence", 170), ("Cloud computing", 80), ("Computer programming", 190),
        ("Web development", 150)]),
]
BEHAVIORS = [
    (["Purchase behavior"], [("Engaged Shoppers", 420), ("Facebook Payments users (30 days)", 25),
                             ("Facebook Payments users (90 days)", 40)]),
    (["Digital activities"], [
        ("Small business owners", 95), ("Technology early adopters", 140), ("Console gamers", 110),
        ("Canvas gaming", 60), ("Facebook Page admins", 120), ("Business page admins", 70),
        ("Event creators", 45), ("Online spenders (active)", 160), ("Early technology adopters", 90)]),
    (["Travel"], [
        ("Frequent travelers", 420), ("Frequent international travelers", 190), ("Currently traveling", 35),
        ("Returned from travels 1 week ago", 30), ("Returned from travels 2 weeks ago", 55), ("Commuters", 230),
        ("Business travelers", 60)]),
    (["Mobile device user"], [
        ("Facebook access (mobile): all mobile devices", 2500),
        ("Facebook access (mobile): smartphones and tablets", 2400),
        ("Facebook access (mobile): Apple (iOS) devices", 700),
        ("Facebook access (mobile): Android devices", 1700), ("New smartphone and tablet users", 210),
        ("Uses a mobile device (25 months+)", 900)]),
    (["Mobile device user", "Network connection"], [
        ("Facebook access (network type): 4G", 1500), ("Facebook access (network type): Wi-Fi", 2100),
        ("Facebook access (network type): 3G", 260)]),
    (["Expats"], [
        ("Lives abroad", 180), ("Expats (United States)", 9), ("Expats (United Kingdom)", 5),
        ("Expats (India)", 18), ("Expats (Mexico)", 11), ("Expats (Philippines)", 8)]),
    (["Soccer"], [("Soccer fans (high content engagement)", 230), ("Friends of soccer fans", 600)]),
    (["Anniversary"], [("Anniversary (within 61-90 days)", 18)]),
]
DEMOGRAPHICS = [
    ("family_statuses", ["Parents"], [
        ("Parents (All)", 800), ("New parents (0-12 months)", 40), ("Parents with toddlers (01-02 years)", 75),
        ("Parents with preschoolers (03-05 years)", 95), ("Parents with early school-age children (06-08 years)", 90),
        ("Parents with preteens (09-12 years)", 105), ("Parents with teenagers (13-17 years)", 110),
        ("Parents with adult children (18-26 years)", 120)]),
    ("industries", ["Work", "Industries"], [
        ("Administrative services", 30), ("Architecture and engineering", 25),
        ("Arts, entertainment, sports and media", 45), ("Business and finance", 40),
        ("Cleaning and maintenance services", 12), ("Community and social services", 14),
        ("Computation and mathematics", 20), ("Construction and extraction", 30),
        ("Education and libraries", 45), ("Farming, fishing and forestry", 15), ("Food and restaurants", 35),
        ("Government employees (global)", 30), ("Healthcare and medical services", 50),
        ("IT and technical services", 35), ("Installation and repair services", 10), ("Legal services", 9),
        ("Life, physical and social sciences", 8), ("Management", 60), ("Military (global)", 12),
        ("Production", 18), ("Protective services", 10), ("Sales", 45), ("Transportation and moving", 20),
        ("Veterans (US)", 6)]),
    ("income", ["Financial", "Income"], [
        ("Household income: top 5% of ZIP codes (US)", 12), ("Household income: top 10% of ZIP codes (US)", 24),
        ("Household income: top 10%-25% of ZIP codes (US)", 36),
        ("Household income: top 25%-50% of ZIP codes (US)", 60)]),
    ("work_positions", ["Work", "Job titles"], [
        ("Software engineer", 9), ("Teacher", 25), ("Nurse", 12), ("Owner", 60), ("Manager", 45), ("Student", 150),
        ("Chief executive officer", 14), ("Marketing manager", 4), ("Graphic designer", 6), ("Accountant", 7)]),
]
EDUCATION_STATUSES = [
    (1, "In high school", 70), (2, "In college", 90), (3, "College grad", 400), (4, "High school grad", 600),
    (5, "Some college", 250), (6, "Associate degree", 60), (7, "In grad school", 25), (8, "Some grad school", 30),
    (9, "Master's degree", 110), (10, "Professional degree", 15), (11, "Doctorate degree", 12),
    (12, "Unspecified", 900), (13, "Some high school", 85)]
RELATIONSHIP_STATUSES = [
    (1, "Single", 420), (2, "In a relationship", 210), (3, "Married", 500), (4, "Engaged", 45),
    (6, "Unspecified", 1300), (7, "In a civil union", 3), (8, "In a domestic partnership", 4),
    (9, "In an open relationship", 6), (10, "It's complicated", 18), (11, "Separated", 9), (12, "Divorced", 30),
    (13, "Widowed", 14)]
LIFE_EVENTS = [
    (["Life events"], [
        ("Newly engaged (1 year)", 30), ("Newly engaged (6 months)", 16), ("Newly engaged (3 months)", 8),
        ("Newlywed (1 year)", 28), ("Newlywed (6 months)", 14), ("Newlywed (3 months)", 7),
        ("Recently moved", 35), ("Away from family", 350), ("Away from hometown", 420), ("New job", 25),
        ("New relationship", 20), ("Long-distance relationship", 6), ("Upcoming birthday", 120),
        ("Anniversary within 30 days", 20), ("Likely to move", 40)]),
    (["Life events", "Friends of"], [
        ("Friends of: Newly engaged (6 months)", 300), ("Friends of: Newlyweds (1 year)", 500),
        ("Friends of: Upcoming birthday", 900), ("Close friends of people with birthdays in a month", 700)]),
    (["Life events", "Birthday"], [
        (f"Birthday in {month}", 160) for month in ("January", "February", "March", "April", "May", "June", "July",
                                                    "August", "September", "October", "November", "December")]),
]


def digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:8], "big")


def jitter(*parts: str) -> float:
    """A deterministic factor in [0.85, 1.15)."""
    return 0.85 + (digest("jitter", *parts) % 3000) / 10000


class Keys:
    """Unique numeric keys derived from names."""

    def __init__(self, digits: int, prefix: str = "") -> None:
        self.digits, self.prefix = digits, prefix
        self.used: set[str] = set()

    def make(self, *parts: str) -> str:
        salt = 0
        while True:
            width = self.digits - len(self.prefix)
            low = 10 ** (width - 1) if not self.prefix else 0
            number = low + digest(*parts, str(salt)) % (10 ** width - low)
            key = f"{self.prefix}{number:0{width}d}"
            if key not in self.used:
                self.used.add(key)
                return key
            salt += 1


def bounds(millions: float, *parts: str) -> tuple[int, int]:
    lower = int(millions * 1_000_000 * jitter(*parts)) // 1000 * 1000
    return lower, int(lower * 1.176) // 1000 * 1000


def build_geo() -> dict:
    region_keys, city_keys = Keys(6), Keys(7)
    countries: list[dict[str, Any]] = []
    regions: list[dict[str, Any]] = []
    cities: list[dict[str, Any]] = []
    zips: list[dict[str, Any]] = []
    for country in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        code = country.alpha_2
        audience = AUDIENCE_M.get(code, 0.02 + (digest("small", code) % 300) / 100)
        has_data = code in POPULOUS_COUNTRIES_WITH_DATA
        countries.append({"key": code, "name": getattr(country, "common_name", None) or country.name,
                          "type": "country", "country_code": code, "supports_region": has_data,
                          "supports_city": has_data, "audience": int(audience * 1_000_000)})
    by_code = {c["key"]: c for c in countries}
    for code in POPULOUS_COUNTRIES_WITH_DATA:
        country_row = by_code[code]
        subs = sorted((s for s in pycountry.subdivisions.get(country_code=code) if s.parent_code is None),
                      key=lambda s: s.code)
        city_pop: dict[str, int] = {}
        for _, region_code, pop in CITIES[code]:
            city_pop[region_code] = city_pop.get(region_code, 0) + pop
        weights = {s.code: city_pop.get(s.code, 0) * 1.8 + 150 * jitter(s.code) for s in subs}
        total = sum(weights.values())
        region_by_code = {}
        for sub in subs:
            region = {"key": region_keys.make("region", sub.code), "name": sub.name, "type": "region",
                      "country_code": code, "country_name": country_row["name"], "iso_code": sub.code,
                      "audience": int(country_row["audience"] * weights[sub.code] / total)}
            regions.append(region)
            region_by_code[sub.code] = region
        pop_total = sum(pop for *_, pop in CITIES[code])
        for name, region_code, pop in CITIES[code]:
            region = region_by_code[region_code]  # KeyError = a typo in CITIES
            share = min(0.9, pop / max(pop_total, 1) * 0.5)
            cities.append({"key": city_keys.make("city", code, name), "name": name, "type": "city",
                           "country_code": code, "country_name": country_row["name"], "region": region["name"],
                           "region_id": region["key"],
                           "audience": int(min(region["audience"] * 0.9, country_row["audience"] * share))})
    city_by = {(c["country_code"], c["name"]): c for c in cities}
    for code, city_name, codes in ZIPS:
        city = city_by[(code, city_name)]
        for zip_code in codes:
            zips.append({"key": f"{code}:{zip_code}", "name": zip_code, "type": "zip", "country_code": code,
                         "country_name": city["country_name"], "primary_city": city_name,
                         "primary_city_id": int(city["key"]), "region": city["region"],
                         "region_id": city["region_id"],
                         "audience": int(max(2000, city["audience"] / max(len(codes), 1) * jitter(code, zip_code)))})
    return {"countries": countries, "regions": regions, "cities": cities, "zips": zips}


def build_categories() -> dict:
    ids = Keys(13, "6003")
    out: dict[str, list] = {"interests": [], "behaviors": [], "demographics": [], "life_events": []}

    def add(bucket: str, kind: str, root: str, path: list[str], name: str, millions: float, item_id=None) -> None:
        lower, upper = bounds(millions, kind, name)
        full = [root, *path, name]
        out[bucket].append({
            "id": str(item_id) if item_id is not None else ids.make(kind, name), "name": name, "type": kind,
            "path": full, "topic": path[0] if path else root,
            "description": f"People who have expressed an interest in or like pages related to {name}"
            if kind == "interests" else f"{root}: {' > '.join(full[1:])}",
            "audience_size_lower_bound": lower, "audience_size_upper_bound": upper})

    for path, items in INTERESTS:
        for name, size in items:
            add("interests", "interests", "Interests", path, name, size)
    for path, items in BEHAVIORS:
        for name, size in items:
            add("behaviors", "behaviors", "Behaviors", path, name, size)
    for kind, path, items in DEMOGRAPHICS:
        for name, size in items:
            add("demographics", kind, "Demographics", path, name, size)
    for number, name, size in EDUCATION_STATUSES:
        add("demographics", "education_statuses", "Demographics", ["Education", "Education level"], name, size,
            number)
    for number, name, size in RELATIONSHIP_STATUSES:
        add("demographics", "relationship_statuses", "Demographics", ["Relationship", "Relationship status"],
            name, size, number)
    for path, items in LIFE_EVENTS:
        for name, size in items:
            add("life_events", "life_events", "Demographics", path, name, size)
    return out


def main() -> None:
    for name, data in (("targeting_geo.json", build_geo()), ("targeting_categories.json", build_categories())):
        text = json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True)
        (OUT / name).write_text(text + "\n", encoding="utf-8")
        print(name, {k: len(v) for k, v in data.items()})


if __name__ == "__main__":
    main()
