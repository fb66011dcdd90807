//! The people the bench registers: names from a fixed list (some with
//! accents, as people type them), phones, emails, tags and roles from a
//! seeded generator, and the same people typed again as a volunteer would
//! (for the duplicate and search figures).

use muster_core::NewContact;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Given names, comma separated (some with accents, as people type them).
pub(crate) const GIVEN: &str = "
    Ana, José, Zoë, Mohammed, Li, Sofia, Olumide, Ingrid, Mateo, Aisha,
    Chloé, Priya, Tomasz, Fatima, Kwame, Élodie, Hiroshi, Amara, Björn, Lucía,
    Dmitri, Noor, Siobhán, Rafael, Yuki, Grace, Omar, Leila, Pedro, Hannah,
    Kofi, Marta, Jonas, Ayesha, Carlos, Emily, Tariq, Nadia, Luca, Isabel,
    Samuel, Mei, Diego, Rosa, Ahmed, Clara, Felix, Inês, Victor, Renée,
    François, Søren, Åsa, Jürgen, Małgorzata, Łukasz, Zoltán, Ágnes, Ilyas, Ngozi,
    Chidi, Adaeze, Thảo, Minh, Hương, Linh, Anh, Bảo, Wei, Xiu,
    Jia, Hao, Min-jun, Ji-woo, Seo-yeon, Haruto, Sakura, Aiko, Kenji, Ravi,
    Anjali, Arjun, Deepa, Sanjay, Lakshmi, Farah, Hassan, Yusuf, Zainab, Mariam,
    Khalid, Layla, Salma, Karim, Youssef, Amir, Reza, Shirin, Dariush, Esther,
    David, Sarah, Miriam, Eitan, Noa, Yael, Thomas, James, Oliver, Charlotte,
    Amelia, George, Jack, Harry, Olivia, Isla, Freya, Ewan, Callum, Niamh,
    Seán, Aoife, Ciarán, Eilidh, Rhys, Dafydd, Gwen, Bethan, Maëlle, Gaëlle,
    Loïc, Hélène, Jérôme, Stéphane, Cécile, Benoît, Agnès, Mathéo, Léa, Inès,
    Raphaël, Noémie, Maria, Juan, Sebastián, Valentina, Camila, Martín, Joaquín, Ximena,
    Andrés, Nicolás, Tomás, João, Conceição, Gonçalo, Leonor, Francisca, Margarida, Giulia,
    Matteo, Lorenzo, Chiara, Niccolò, Federica, Anouk, Sem, Daan, Fleur, Lars,
    Astrid, Sigrid, Magnus, Eirik, Maja, Oskar, Ilse, Lukas, Leonie, Käthe,
    Jörg, Uwe, Dagmar, Olga, Natalia, Sergei, Anastasia, Yevgenia, Bogdan, Ionuț,
    Ștefan, Dragoș, Zeynep, Emre, Ayşe, Çağla, Mehmet, Efua, Abena, Kwabena,
    Thandiwe, Sipho, Lindiwe, Tendai, Wanjiru, Njeri, Amani, Zawadi, Tigist, Selam";

/// Family names, comma separated.
pub(crate) const FAMILY: &str = "
    Silva, Núñez, Müller, Okafor, Chen, García, Nowak, Haddad, Andersen, Rossi,
    Dubois, Nguyễn, Patel, Kowalski, Mensah, Tanaka, O'Brien, Fernández, Ivanov, Khan,
    Schmidt, Costa, Yılmaz, Smith, Jones, Nguyen, Kim, Santos, Pereira, Martin,
    Bernard, López, González, Wilson, Taylor, Brown, Moreau, Lefèvre, Almeida, Sørensen,
    Virtanen, Horváth, Popescu, Papadopoulos, Cohen, Mwangi, Abebe, Ramírez, Sato, Wójcik,
    Trần, Lê, Phạm, Hoàng, Huỳnh, Võ, Đặng, Bùi, Đỗ, Ngô,
    Wang, Zhang, Liu, Huang, Zhao, Wu, Zhou, Xu, Sun, Ma,
    Park, Lee, Choi, Jung, Kang, Suzuki, Takahashi, Watanabe, Itō, Yamamoto,
    Sharma, Singh, Kumar, Gupta, Reddy, Iyer, Chatterjee, Das, Joshi, Mehta,
    Ahmed, Hussain, Ali, Rahman, Hossain, Mahmoud, Ibrahim, Hassan, Abdullah, Al-Farsi,
    Karimi, Hosseini, Mohammadi, Rezaei, Levi, Friedman, Katz, Shapiro, Adeyemi, Okonkwo,
    Adebayo, Eze, Nwosu, Boateng, Owusu, Asante, Dlamini, Nkosi, Ndlovu, Kamau,
    Otieno, Wanjiku, Haile, Tesfaye, Girma, Diallo, Traoré, Koné, Ndiaye, Sow,
    Williams, Davies, Evans, Thomas, Roberts, Hughes, Murphy, Kelly, O'Sullivan, Walsh,
    MacDonald, Campbell, Stewart, Fraser, Ó Ceallaigh, Mac Giolla Bhríde, Durand, Lefebvre, Girard, Fournier,
    Rousseau, Bonnet, Faure, Chevalier, Weiß, Schäfer, Köhler, Groß, Hoffmann, Fischer,
    Wagner, Bauer, Öztürk, Şahin, Çelik, Doğan, Kaya, Demir, Arslan, Rodríguez,
    Martínez, Sánchez, Pérez, Gómez, Díaz, Jiménez, Álvarez, Muñoz, Romero, Gonçalves,
    Magalhães, Simões, Gaspar, Ferrari, Esposito, Bianchi, Romano, Colombo, De Luca, Bruno,
    van den Berg, de Vries, Jansen, Bakker, Visser, Jensen, Nielsen, Hansen, Johansson, Karlsson,
    Lindqvist, Åberg, Nyström, Korhonen, Mäkinen, Kovács, Szabó, Tóth, Novák, Dvořák,
    Černý, Svoboda, Kowalczyk, Wiśniewski, Zieliński, Łęcki, Petrov, Smirnov, Kuznetsova, Popova,
    Shevchenko, Kovalenko, Bondarenko, Georgiou, Dimitriou, Nikolaidis";

pub(crate) const TAGS: &[&str] = &[
    "food-bank",
    "choir",
    "youth",
    "donor-2026",
    "newsletter",
    "driver",
    "translator",
    "board",
    "first-aid",
    "gift-aid",
    "wheelchair",
    "school-run",
];
pub(crate) const ROLES: &[&str] = &["volunteer", "donor", "beneficiary", "staff"];
pub(crate) const DOMAINS: &[&str] = &[
    "example.org",
    "example.com",
    "mail.example.net",
    "post.example.co.uk",
];

/// First clock value; every recorded time is this plus a counter.
pub(crate) const EPOCH_MS: i64 = 1_750_000_000_000;

/// The fixed clock: each call is one millisecond later.
pub(crate) struct Clock(pub(crate) i64);

impl Clock {
    pub(crate) fn tick(&mut self) -> i64 {
        self.0 += 1;
        self.0
    }
}

pub(crate) fn split_list(list: &'static str) -> Vec<&'static str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Latin letters without their accents, lower case, for email addresses
/// and for queries typed without accents. Other characters are dropped
/// unless ASCII.
pub(crate) fn fold(s: &str) -> String {
    const GROUPS: &[(&str, &str)] = &[
        ("áàâäãåāăąạảấầẩẫậắằẳẵặ", "a"),
        ("çćč", "c"),
        ("đď", "d"),
        ("éèêëēęěẹẻẽếềểễệ", "e"),
        ("ğ", "g"),
        ("íìîïīıịỉĩ", "i"),
        ("łľ", "l"),
        ("ñńň", "n"),
        ("óòôöõøōőọỏốồổỗộơớờởỡợ", "o"),
        ("ř", "r"),
        ("śšşș", "s"),
        ("ț", "t"),
        ("úùûüūůưụủũứừửữự", "u"),
        ("ýÿỳỷỹỵ", "y"),
        ("źżž", "z"),
        ("ß", "ss"),
        ("æ", "ae"),
        ("œ", "oe"),
    ];
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii() {
            out.push(c);
        } else if let Some((_, plain)) = GROUPS.iter().find(|(g, _)| g.contains(c)) {
            out.push_str(plain);
        }
    }
    out
}

pub(crate) fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// A random run of 3–6 characters of `text` (fewer if it is shorter),
/// from its start or from anywhere.
pub(crate) fn run(rng: &mut ChaCha8Rng, text: &str, from_start: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let len = rng.random_range(3..=6).min(chars.len());
    let start = if from_start {
        0
    } else {
        rng.random_range(0..=chars.len() - len)
    };
    chars[start..start + len].iter().collect()
}

/// Realistic contacts from a fixed seed.
pub(crate) struct People {
    pub(crate) rng: ChaCha8Rng,
    pub(crate) given: Vec<&'static str>,
    pub(crate) family: Vec<&'static str>,
}

/// What a searcher may remember of a contact.
pub(crate) struct Remembered {
    pub(crate) name: String,
    /// The six digits after `+44 7700 `, if the contact has a phone.
    pub(crate) phone_tail: Option<String>,
    /// The part before the `@`, if the contact has an email.
    pub(crate) email_local: Option<String>,
}

impl People {
    pub(crate) fn new(seed: u64) -> People {
        People {
            rng: ChaCha8Rng::seed_from_u64(seed),
            given: split_list(GIVEN),
            family: split_list(FAMILY),
        }
    }

    /// The `i`th person: a name, usually a UK mobile number (`+44 7700
    /// 900123`) and an email derived from the name, 0–3 tags, maybe a role.
    pub(crate) fn person(&mut self, i: usize) -> (NewContact, Remembered) {
        let given = pick(&mut self.rng, &self.given);
        let mut family = pick(&mut self.rng, &self.family).to_owned();
        if self.rng.random_bool(0.08) {
            // Two family names, as in "García López".
            family = format!("{family} {}", pick(&mut self.rng, &self.family));
        }
        let name = format!("{given} {family}");

        let tail = format!("{:06}", self.rng.random_range(0..1_000_000));
        let phones = if self.rng.random_bool(0.9) {
            vec![format!("+44 7700 {tail}")]
        } else {
            Vec::new()
        };

        let (g, f) = (fold(given), fold(&family));
        let f: String = f.chars().filter(char::is_ascii_alphanumeric).collect();
        let g: String = g.chars().filter(char::is_ascii_alphanumeric).collect();
        let local = match self.rng.random_range(0..4) {
            0 => format!("{g}.{f}"),
            1 => format!("{g}{f}{}", i % 100),
            2 => format!("{}{f}", g.chars().next().unwrap_or('x')),
            _ => format!("{g}.{f}{}", i % 1000),
        };
        let emails = if self.rng.random_bool(0.8) {
            vec![format!("{local}@{}", pick(&mut self.rng, DOMAINS))]
        } else {
            Vec::new()
        };

        let mut tags: Vec<String> = Vec::new();
        for _ in 0..self.rng.random_range(0..=3) {
            let tag = pick(&mut self.rng, TAGS);
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        let roles = if self.rng.random_bool(0.5) {
            vec![pick(&mut self.rng, ROLES).to_owned()]
        } else {
            Vec::new()
        };

        let remembered = Remembered {
            name: name.clone(),
            phone_tail: (!phones.is_empty()).then_some(tail),
            email_local: (!emails.is_empty()).then_some(local),
        };
        let contact = NewContact {
            name,
            phones,
            emails,
            roles,
            tags,
            ..Default::default()
        };
        (contact, remembered)
    }

    /// A search a person at a desk would type to find `who`: 3–6 characters
    /// of the family name's start, of the inside of a name, of the phone
    /// number's digits or of the email address.
    pub(crate) fn query(&mut self, who: &Remembered) -> String {
        let kind = self.rng.random_range(0..10);
        match (kind, &who.phone_tail, &who.email_local) {
            (6 | 7, Some(tail), _) => return run(&mut self.rng, tail, false),
            (8 | 9, _, Some(local)) if local.chars().count() >= 3 => {
                return run(&mut self.rng, local, false);
            }
            _ => {}
        }
        // Name words long enough for the index; the first is the given name.
        let words: Vec<&str> = who
            .name
            .split_whitespace()
            .filter(|w| w.chars().count() >= 3)
            .collect();
        let q = match words.as_slice() {
            [] => who.name.clone(),
            // Start of the family name (or of the only long word).
            [only] => run(&mut self.rng, only, true),
            [_, family, ..] if kind < 3 => run(&mut self.rng, family, true),
            // Inside a name word: "osé", "ürge", "afo".
            _ => {
                let word = words[self.rng.random_range(0..words.len())];
                run(&mut self.rng, word, false)
            }
        };
        // Many people type without accents.
        if self.rng.random_bool(0.4) {
            fold(&q)
        } else {
            q.to_lowercase()
        }
    }
}

/// A second registration of `c` as another desk would type it: a typo in
/// the family name, the phone written the national way, the email in other
/// case, or only the name (with a typo) and nothing else. `kind` picks which.
pub(crate) fn retyped(c: &NewContact, kind: usize, rng: &mut ChaCha8Rng) -> NewContact {
    let typo = |name: &str, rng: &mut ChaCha8Rng| -> String {
        let mut chars: Vec<char> = name.chars().collect();
        // Somewhere in the family name: swap two letters, or drop one.
        let from = chars.iter().position(|c| *c == ' ').map_or(1, |p| p + 2);
        if chars.len() > from + 2 {
            let i = rng.random_range(from..chars.len() - 1);
            if rng.random_bool(0.5) {
                chars.swap(i, i + 1);
            } else {
                chars.remove(i);
            }
        }
        chars.into_iter().collect()
    };
    let national = |p: &String| p.replace("+44 ", "0");
    match kind % 4 {
        0 => NewContact {
            name: typo(&c.name, rng),
            phones: c.phones.iter().map(national).collect(),
            ..Default::default()
        },
        1 => NewContact {
            name: c.name.to_uppercase(),
            emails: c.emails.iter().map(|e| e.to_uppercase()).collect(),
            ..Default::default()
        },
        2 => NewContact {
            name: fold(&c.name),
            phones: c.phones.iter().map(national).collect(),
            emails: c.emails.clone(),
            ..Default::default()
        },
        _ => NewContact::named(typo(&c.name, rng)),
    }
}
