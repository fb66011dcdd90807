//! `cargo run --release -p muster-bench [-- --quick] [--markdown FILE]
//! [--only core|sync]`: measures what users feel and prints one table
//! (figure, Muster, automerge-repo, ratio, unit, target) to stdout, progress
//! to stderr. Every store lives in a fresh temporary directory; data comes
//! from a fixed seed (ChaCha8, 42) and fixed clock values, so two runs
//! measure the same work. Only loopback is used.
//!
//! Hidden subcommands (this binary spawns itself):
//! - `__open-probe PATH`: open the store cold, search, print
//!   `OPEN <open µs> <first search µs> <peak RSS MB>`;
//! - `__relay DATA [CATCH_UP_BATCHES BATCH_BYTES]`: a relay for the sync
//!   figures;
//! - `__stampede [N SIZE [SLOTS KIB]]`: N fresh devices (1,000) begin a
//!   first sync of SIZE contacts (2,000) at once; the relay's memory with
//!   the catch-up limits given, or with its defaults and with none (as it
//!   was before);
//! - `__device-sync URL TOKEN PATH`: a fresh device's first sync, printing
//!   `PEAK <MB> SECS <s>` (its peak resident memory, the sync's time);
//! - `__automerge-repo [SIZE] [--quick]`: the automerge-repo figures alone;
//! - `__create N`: create N contacts in a scratch store (for profiling).

mod automerge_repo;
mod sync_figures;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use muster_core::{NewContact, NewEvent, Store};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sync_figures::Figure;

/// Given names, comma separated (some with accents, as people type them).
const GIVEN: &str = "
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
const FAMILY: &str = "
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

const TAGS: &[&str] = &[
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
const ROLES: &[&str] = &["volunteer", "donor", "beneficiary", "staff"];
const DOMAINS: &[&str] = &[
    "example.org",
    "example.com",
    "mail.example.net",
    "post.example.co.uk",
];

/// First clock value; every recorded time is this plus a counter.
const EPOCH_MS: i64 = 1_750_000_000_000;

/// The fixed clock: each call is one millisecond later.
struct Clock(i64);

impl Clock {
    fn tick(&mut self) -> i64 {
        self.0 += 1;
        self.0
    }
}

fn split_list(list: &'static str) -> Vec<&'static str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Latin letters without their accents, lower case, for email addresses
/// and for queries typed without accents. Other characters are dropped
/// unless ASCII.
fn fold(s: &str) -> String {
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

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// A random run of 3–6 characters of `text` (fewer if it is shorter),
/// from its start or from anywhere.
fn run(rng: &mut ChaCha8Rng, text: &str, from_start: bool) -> String {
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
struct People {
    rng: ChaCha8Rng,
    given: Vec<&'static str>,
    family: Vec<&'static str>,
}

/// What a searcher may remember of a contact.
struct Remembered {
    name: String,
    /// The six digits after `+44 7700 `, if the contact has a phone.
    phone_tail: Option<String>,
    /// The part before the `@`, if the contact has an email.
    email_local: Option<String>,
}

impl People {
    fn new(seed: u64) -> People {
        People {
            rng: ChaCha8Rng::seed_from_u64(seed),
            given: split_list(GIVEN),
            family: split_list(FAMILY),
        }
    }

    /// The `i`th person: a name, usually a UK mobile number (`+44 7700
    /// 900123`) and an email derived from the name, 0–3 tags, maybe a role.
    fn person(&mut self, i: usize) -> (NewContact, Remembered) {
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
    fn query(&mut self, who: &Remembered) -> String {
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

/// The `p` quantile (0..=1) of sorted samples, nearest rank.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// This process's peak resident memory (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `12345` → `12,345`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Size on disk of the store file and of its write-ahead log, in bytes.
fn store_bytes(path: &Path) -> (u64, u64) {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    (size(path), size(Path::new(&wal)))
}

const PROBE_QUERIES: &[&str] = &[
    "silv",
    "müll",
    "jose",
    "7700 9",
    "okafor",
    "chen",
    "lucía",
    "gonz",
    "tanak",
    "rossi",
    "nguy",
    "zoe",
    "ürge",
    "0012",
    "example.c",
    "anders",
    "élod",
    "haddad",
    "smit",
    "kowal",
];

/// `__open-probe PATH`: opens the store in this fresh process, runs one
/// search, then 99 more, and prints
/// `OPEN <open µs> <first search µs> <peak RSS MB>`.
fn open_probe(path: &Path) -> Result<()> {
    let t = Instant::now();
    let store = Store::open(path)?;
    let open_us = t.elapsed().as_micros();
    let t = Instant::now();
    store.search_contacts(PROBE_QUERIES[0], 20)?;
    let first_us = t.elapsed().as_micros();
    for q in PROBE_QUERIES.iter().cycle().skip(1).take(99) {
        store.search_contacts(q, 20)?;
    }
    println!("OPEN {open_us} {first_us} {:.1}", peak_rss_mb());
    Ok(())
}

/// Runs `__open-probe` in a child process; returns (open ms, first search
/// ms, peak RSS MB).
fn run_probe(path: &Path) -> Result<(f64, f64, f64)> {
    let probe = std::process::Command::new(std::env::current_exe()?)
        .arg("__open-probe")
        .arg(path)
        .output()?;
    let out = String::from_utf8_lossy(&probe.stdout);
    if !probe.status.success() {
        bail!(
            "open probe failed ({}): {out}{}",
            probe.status,
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    let line = out
        .lines()
        .find(|l| l.starts_with("OPEN "))
        .with_context(|| format!("open probe printed {out:?}"))?;
    let nums: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("open probe printed {line:?}"))?;
    let [open_us, first_us, rss] = nums[..] else {
        bail!("open probe printed {line:?}");
    };
    Ok((open_us / 1000.0, first_us / 1000.0, rss))
}

/// Collects figures as rows of the table.
#[derive(Default)]
struct Figures(Vec<Figure>);

impl Figures {
    fn add(&mut self, name: impl Into<String>, value: String, unit: &'static str) {
        self.target(name, value, unit, "");
    }

    fn target(
        &mut self,
        name: impl Into<String>,
        value: String,
        unit: &'static str,
        target: &'static str,
    ) {
        self.0.push(Figure {
            name: name.into(),
            value,
            unit,
            target,
        });
    }
}

fn core_figures(dir: &Path, n: usize, quick: bool) -> Result<Vec<Figure>> {
    let mut figs = Figures::default();
    let nn = thousands(n);
    let path = dir.join("device.muster");
    let mut store = Store::open(&path)?;
    let mut people = People::new(42);
    let mut clock = Clock(EPOCH_MS);
    // Every 50th person, to search for later.
    let mut remembered = Vec::new();

    // 1. Bulk creation.
    eprintln!("core: creating {nn} contacts in batches of 1,000");
    let mut made = 0;
    let mut busy = 0.0;
    while made < n {
        let mut batch = Vec::with_capacity(1_000);
        for i in made..(made + 1_000).min(n) {
            let (contact, who) = people.person(i);
            if i % 50 == 0 {
                remembered.push(who);
            }
            batch.push(contact);
        }
        made += batch.len();
        let t = Instant::now();
        store.create_contacts(&batch, clock.tick())?;
        busy += t.elapsed().as_secs_f64();
        if made % 20_000 == 0 {
            eprintln!("  {} contacts, {busy:.1} s", thousands(made));
        }
    }
    figs.add(
        format!("create {nn} contacts (batched, 1,000 per transaction)"),
        format!("{busy:.1}"),
        "s",
    );
    figs.add("  rate", format!("{:.0}", n as f64 / busy), "contacts/s");
    let (db, wal) = store_bytes(&path);
    figs.add(
        format!("store size after creating {nn} (db + wal)"),
        format!("{:.1}", (db + wal) as f64 / 1e6),
        "MB",
    );
    figs.add("  of which wal", format!("{:.1}", wal as f64 / 1e6), "MB");
    figs.add(
        "  per contact",
        format!("{:.2}", (db + wal) as f64 / 1e3 / n as f64),
        "kB",
    );

    // 2. Single durable writes: one transaction, fsync'd, each.
    store.checkpoint()?; // as an app does when idle
    let writes = if quick { 300 } else { 1_000 };
    eprintln!(
        "core: {} single durable writes (create_contact)",
        thousands(writes)
    );
    let mut lat = Vec::with_capacity(writes);
    for i in 0..writes {
        let (contact, _) = people.person(n + i);
        let now = clock.tick();
        let t = Instant::now();
        store.create_contact(&contact, now)?;
        lat.push(ms_since(t));
    }
    let lat = sorted(lat);
    figs.add(
        "single durable write (create_contact) p50",
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
    );
    figs.target(
        "single durable write (create_contact) p99",
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
        "< 2",
    );
    figs.add(
        "single durable write (create_contact) max",
        format!("{:.2}", percentile(&lat, 1.0)),
        "ms",
    );

    let signups = 2_000;
    let checkins = 1_000;
    eprintln!(
        "core: {} sign-ups to one event, then {} check-ins",
        thousands(signups),
        thousands(checkins)
    );
    let starts = clock.tick() + 86_400_000;
    let event = store.create_event(
        &NewEvent {
            title: "Bench gala".into(),
            starts_at: starts,
            ends_at: Some(starts + 4 * 3_600_000),
            place: "Town hall".into(),
            capacity: Some(2_500),
        },
        clock.tick(),
    )?;
    let ids: Vec<String> = store
        .list_contacts(signups, 0)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut lat = Vec::with_capacity(signups);
    for id in &ids {
        let now = clock.tick();
        let t = Instant::now();
        store.sign_up(&event, id, false, now)?;
        lat.push(ms_since(t));
    }
    let lat = sorted(lat);
    figs.add(
        format!("sign-up, event growing to {} p50", thousands(signups)),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
    );
    figs.add(
        format!("sign-up, event growing to {} p99", thousands(signups)),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
    );
    // People arrive in any order.
    let mut order: Vec<usize> = (0..ids.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, people.rng.random_range(0..=i));
    }
    let mut lat = Vec::with_capacity(checkins);
    for &k in order.iter().take(checkins) {
        let now = clock.tick();
        let t = Instant::now();
        store.check_in(&event, &ids[k], now)?;
        lat.push(ms_since(t));
    }
    let lat = sorted(lat);
    figs.add(
        format!("check-in, event with {} sign-ups p50", thousands(signups)),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
    );
    figs.add(
        format!("check-in, event with {} sign-ups p99", thousands(signups)),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
    );

    // 4. Search.
    let searches = 1_000;
    eprintln!("core: {} searches", thousands(searches));
    let queries: Vec<String> = (0..searches)
        .map(|_| {
            let who = &remembered[people.rng.random_range(0..remembered.len())];
            people.query(who)
        })
        .collect();
    let mut lat = Vec::with_capacity(searches);
    let mut hits = Vec::with_capacity(searches);
    let mut slowest: Vec<(f64, &str, usize)> = Vec::new();
    for q in &queries {
        let t = Instant::now();
        let found = store.search_contacts(q, 20)?;
        let ms = ms_since(t);
        lat.push(ms);
        hits.push(found.len() as f64);
        slowest.push((ms, q, found.len()));
    }
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!(
        "  slowest: {}",
        slowest
            .iter()
            .take(5)
            .map(|(ms, q, k)| format!("{q:?} {ms:.2} ms ({k} results)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "  sample queries: {}",
        queries
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let lat = sorted(lat);
    let hits = sorted(hits);
    figs.add(
        format!("name search among {nn} contacts p50"),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
    );
    figs.target(
        format!("name search among {nn} contacts p99"),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
        "< 5",
    );
    figs.add(
        "  median results per search (limit 20)",
        format!("{:.0}", percentile(&hits, 0.5)),
        "",
    );
    figs.add(
        "  searches with no result",
        format!("{}", hits.iter().filter(|h| **h == 0.0).count()),
        "of 1,000",
    );

    // 3. Size once closed: the last connection checkpoints the WAL away.
    drop(store);
    let (db, wal) = store_bytes(&path);
    figs.add(
        "store size after close (db + wal, checkpointed)",
        format!("{:.1}", (db + wal) as f64 / 1e6),
        "MB",
    );

    // 5. Cold open in a fresh process (file in the page cache).
    let probes = 5;
    eprintln!("core: open in a fresh process, {probes} times");
    let mut opens = Vec::new();
    let mut firsts = Vec::new();
    let mut rss: f64 = 0.0;
    for _ in 0..probes {
        let (open, first, peak) = run_probe(&path)?;
        opens.push(open);
        firsts.push(first);
        rss = rss.max(peak);
    }
    let opens = sorted(opens);
    let firsts = sorted(firsts);
    figs.target(
        format!("open cold (fresh process, median of {probes})"),
        format!("{:.1}", percentile(&opens, 0.5)),
        "ms",
        "< 200",
    );
    figs.add(
        "  first search after open",
        format!("{:.1}", percentile(&firsts, 0.5)),
        "ms",
    );
    figs.add(
        format!("memory at {nn} contacts (open + 100 searches, peak RSS)"),
        format!("{rss:.0}"),
        "MB",
    );

    // The first check-in after the app starts loads the event from disk.
    let mut store = Store::open(&path)?;
    let changes = store.stored_change_count(&event)?;
    let now = clock.tick();
    let t = Instant::now();
    store.check_in(&event, &ids[order[checkins]], now)?;
    let first = ms_since(t);
    eprintln!("  first check-in after reopen: {first:.1} ms ({changes} stored changes)");
    figs.add(
        format!(
            "first check-in after reopen (event of {} stored changes)",
            thousands(changes as usize)
        ),
        format!("{first:.1}"),
        "ms",
    );
    drop(store);

    // 6.
    figs.add(
        "bench process peak RSS (after the above)",
        format!("{:.0}", peak_rss_mb()),
        "MB",
    );
    Ok(figs.0)
}

/// The leading number of a cell ("37 / 37" → 37, "448/384" → 448).
fn leading_number(cell: &str) -> Option<f64> {
    let end = cell
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(cell.len());
    cell[..end].parse().ok().filter(|v: &f64| v.is_finite())
}

/// "automerge-repo ÷ Muster" for each layout of an automerge-repo cell
/// ("per-contact / one-doc"), or "-" where either side is not a number.
fn ratio(muster: &str, other: &str) -> String {
    // Only where Muster's cell is a number (or "peak / now" numbers), not
    // a sentence such as "200 in 0.2 s".
    if !muster.split(" / ").all(|p| p.trim().parse::<f64>().is_ok()) {
        return "-".into();
    }
    let Some(m) = leading_number(muster).filter(|m| *m > 0.0) else {
        return "-".into();
    };
    let parts: Vec<String> = other
        .split(" / ")
        .map(|v| match leading_number(v) {
            Some(o) if o / m >= 10.0 => format!("{:.0}", o / m),
            Some(o) if o / m >= 0.095 => format!("{:.1}", o / m),
            Some(o) => format!("{:.2}", o / m),
            None => "-".into(),
        })
        .collect();
    if parts.iter().all(|p| p == "-") {
        "-".into()
    } else {
        parts.join(" / ")
    }
}

/// The table as Markdown, columns padded so that it also reads as text.
/// `others` are automerge-repo's figures by name: each joins the Muster
/// figure of the same name (or whose name it begins), and any left over get
/// rows of their own after the rest.
fn table(figures: &[Figure], others: &[(String, String)]) -> String {
    let header = [
        "figure",
        "Muster",
        "automerge-repo",
        "ratio",
        "unit",
        "target",
    ];
    let mut used = vec![false; others.len()];
    let mut rows: Vec<[String; 6]> = figures
        .iter()
        .map(|f| {
            let found = others.iter().position(|(n, _)| *n == f.name).or_else(|| {
                others
                    .iter()
                    .position(|(n, _)| n.ends_with("holding them") && f.name.starts_with(n))
            });
            let (other, r) = match found {
                Some(i) => {
                    used[i] = true;
                    (others[i].1.clone(), ratio(&f.value, &others[i].1))
                }
                None => ("-".into(), "-".into()),
            };
            [
                f.name.clone(),
                f.value.clone(),
                other,
                r,
                f.unit.into(),
                f.target.into(),
            ]
        })
        .collect();
    for ((name, value), _) in others.iter().zip(&used).filter(|(_, u)| !**u) {
        rows.push([
            name.clone(),
            "-".into(),
            value.clone(),
            "-".into(),
            String::new(),
            String::new(),
        ]);
    }
    let mut width = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::from("|");
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            // Numbers to the right, text to the left.
            if i == 1 || i == 2 || i == 3 {
                s += &format!(" {pad}{cell} |");
            } else {
                s += &format!(" {cell}{pad} |");
            }
        }
        s + "\n"
    };
    let mut s = line(header);
    s += "|";
    for (i, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        s += &if (1..=3).contains(&i) {
            format!(" {dashes}:|")
        } else {
            format!(" {dashes} |")
        };
    }
    s += "\n";
    for row in &rows {
        s += &line(row.each_ref().map(String::as_str));
    }
    s
}

fn flag_value(args: &[String], flag: &str) -> Result<Option<String>> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => Ok(Some(
            args.get(i + 1)
                .with_context(|| format!("{flag} needs a value"))?
                .clone(),
        )),
    }
}

/// A second registration of `c` as another desk would type it: a typo in
/// the family name, the phone written the national way, the email in other
/// case, or only the name (with a typo) and nothing else. `kind` picks which.
fn retyped(c: &NewContact, kind: usize, rng: &mut ChaCha8Rng) -> NewContact {
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
        _ => NewContact {
            name: typo(&c.name, rng),
            ..Default::default()
        },
    }
}

/// `__duplicates N`: N contacts of which 5% are registered a second time
/// (see [`retyped`]); prints the detection time, precision and recall.
fn duplicates_figure(n: usize) -> Result<()> {
    use std::collections::HashSet;
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(dir.path().join("dups.muster"))?;
    let mut people = People::new(42);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // With MUSTER_NAMESAKES unset, the originals are distinct people by
    // name, phone and email: every pair found is either a known duplicate
    // or a mistake. (The generator otherwise makes namesakes who often
    // share an email address too, which no method can tell apart.)
    let namesakes = std::env::var_os("MUSTER_NAMESAKES").is_some();
    let mut used: HashSet<String> = HashSet::new();
    let mut originals: Vec<NewContact> = Vec::with_capacity(n);
    let mut i = 0;
    while originals.len() < n {
        let c = people.person(i).0;
        i += 1;
        let keys: Vec<String> = std::iter::once(format!("n:{}", fold(&c.name).to_lowercase()))
            .chain(c.phones.iter().map(|p| format!("p:{p}")))
            .chain(c.emails.iter().map(|e| format!("e:{e}")))
            .collect();
        if !namesakes && keys.iter().any(|k| used.contains(k)) {
            continue;
        }
        used.extend(keys);
        originals.push(c);
    }
    let ids = store.create_contacts(&originals, EPOCH_MS)?;
    let mut truth: HashSet<(String, String)> = HashSet::new();
    let mut again = Vec::new();
    let mut of = Vec::new();
    for (i, c) in originals.iter().enumerate() {
        if rng.random_bool(0.05) {
            again.push(retyped(c, again.len(), &mut rng));
            of.push(ids[i].clone());
        }
    }
    let dup_ids = store.create_contacts(&again, EPOCH_MS + 1)?;
    for (o, d) in of.iter().zip(&dup_ids) {
        truth.insert((o.clone(), d.clone()));
    }
    let t = Instant::now();
    let pairs = store.duplicate_candidates()?;
    let secs = t.elapsed().as_secs_f64();
    let found: HashSet<(String, String)> =
        pairs.iter().map(|p| (p.a.clone(), p.b.clone())).collect();
    let hits = found.iter().filter(|p| truth.contains(*p)).count();
    println!(
        "{} contacts, {} known duplicates: {} pairs proposed in {secs:.2} s; precision {:.3}, recall {:.3}",
        n + again.len(),
        truth.len(),
        pairs.len(),
        hits as f64 / pairs.len().max(1) as f64,
        hits as f64 / truth.len().max(1) as f64,
    );
    if std::env::var_os("MUSTER_SHOW_FALSE").is_some() {
        for p in pairs
            .iter()
            .filter(|p| !truth.contains(&(p.a.clone(), p.b.clone())))
            .take(15)
        {
            println!("  false: {p:?}");
        }
    }
    for kind in 0..4 {
        let of_kind: Vec<_> = of
            .iter()
            .zip(&dup_ids)
            .enumerate()
            .filter(|(i, _)| i % 4 == kind)
            .map(|(_, (o, d))| (o.clone(), d.clone()))
            .collect();
        let got = of_kind.iter().filter(|p| found.contains(*p)).count();
        println!(
            "  kind {kind}: recall {:.3} of {}",
            got as f64 / of_kind.len().max(1) as f64,
            of_kind.len()
        );
    }
    Ok(())
}

/// `__reports [STORE]`: how long each coordinator report takes over
/// 100,000 contacts (a third with consent, 10,000 donors, 20 events of
/// 1,000 sign-ups, 2,000 shifts, 1,000 feedback cases). Filling takes
/// minutes; with STORE the filled store is kept there and reused.
fn reports_figure(keep: Option<&Path>) -> Result<()> {
    use muster_core::{Donation, NewFeedback, Shift};
    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    let dir = tempfile::tempdir()?;
    let path = keep.map_or_else(|| dir.path().join("reports.muster"), Path::to_path_buf);
    let t = EPOCH_MS;
    if !path.exists() {
        let started = Instant::now();
        let mut s = Store::open(&path)?;
        let mut people = People::new(42);
        let mut ids = Vec::new();
        for chunk in 0..10 {
            let batch: Vec<NewContact> = (0..10_000)
                .map(|i| people.person(chunk * 10_000 + i).0)
                .collect();
            ids.extend(s.create_contacts(&batch, t + chunk as i64)?);
        }
        for (i, id) in ids.iter().enumerate().step_by(3) {
            let channel = ["email", "sms", "post"][(i / 3) % 3].to_owned();
            s.update_contact(id, t + 1, |c| {
                c.consent.given = true;
                c.consent.recorded_at = Some(t + 1);
                c.consent.channels = [(channel, true)].into_iter().collect();
                Ok(())
            })?;
        }
        for (i, id) in ids.iter().enumerate().step_by(10) {
            let gift = Donation {
                id: String::new(),
                amount_minor: 1_000 + i as i64,
                currency: "EUR".into(),
                date: t + (i as i64 % 700) * DAY,
                method: "card".into(),
                note: None,
                recorded_by: String::new(),
            };
            s.add_to_ledger(id, gift, t)?;
        }
        for e in 0..20i64 {
            let ev = s.create_event(
                &NewEvent::new(format!("Event {e}"), t + e * 7 * DAY, "Hall", Some(900)),
                t,
            )?;
            for (i, id) in ids
                .iter()
                .enumerate()
                .skip(e as usize)
                .step_by(100)
                .take(1_000)
            {
                s.sign_up(&ev, id, false, t + i as i64)?;
            }
            for (i, id) in ids.iter().enumerate().take(100) {
                let shift = Shift {
                    contact_id: id.clone(),
                    role: "desk".into(),
                    starts_at: t + e * 7 * DAY + i as i64 * HOUR,
                    ends_at: t + e * 7 * DAY + (i as i64 + 2) * HOUR,
                    minutes_worked: None,
                };
                s.add_shift(&ev, shift, t)?;
            }
        }
        for (i, id) in ids.iter().enumerate().take(1_000) {
            let case = NewFeedback {
                contact_id: Some(id.clone()),
                channel: "email".into(),
                category: "question".into(),
                text: "When does it start?".into(),
            };
            s.create_feedback(&case, t + i as i64 * HOUR)?;
        }
        s.checkpoint()?;
        println!(
            "filled {} in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let s = Store::open(&path)?;
    let now = t + 800 * DAY;
    let time = |name: &str, f: &dyn Fn() -> muster_core::Result<()>| -> Result<()> {
        let started = Instant::now();
        f()?;
        println!(
            "report {name:<20} {:>8.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    };
    time("events", &|| s.reports().events(None, None).map(drop))?;
    time("hours", &|| {
        s.reports().hours("month", None, None, now).map(drop)
    })?;
    time("new-contacts", &|| {
        s.reports().new_contacts(None, None).map(drop)
    })?;
    time("donors", &|| {
        s.reports().donors("year", None, None, now).map(drop)
    })?;
    time("feedback", &|| {
        s.reports().feedback(None, None, now).map(drop)
    })?;
    time("consent", &|| s.reports().consent(false).map(drop))?;
    time("consent --refusals", &|| {
        s.reports().consent(true).map(drop)
    })?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("__automerge-repo") => {
            // `__automerge-repo [SIZE] [--quick]`: the automerge-repo figures alone.
            let size: usize = match args.get(1).filter(|a| !a.starts_with("--")) {
                Some(v) => v.parse().context("__automerge-repo SIZE")?,
                None => 10_000,
            };
            let quick = args.iter().any(|a| a == "--quick");
            let dir = tempfile::tempdir()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let devices = if quick { 20 } else { 100 };
            let pairs =
                runtime.block_on(automerge_repo::figures(dir.path(), &[size], devices, quick))?;
            for (name, value) in pairs {
                println!("{name}\t{value}");
            }
            return Ok(());
        }
        Some("__open-probe") => return open_probe(Path::new(args.get(1).context("path")?)),
        Some("__device-sync") => {
            let arg = |i: usize| args.get(i).context("__device-sync URL TOKEN PATH");
            return sync_figures::device_sync_main(arg(1)?, arg(2)?, Path::new(arg(3)?));
        }
        Some("__stampede") => {
            // One figure alone: N fresh devices at once against SIZE
            // contacts, with the catch-up limits SLOTS × KIB or, without,
            // the relay's defaults and none.
            let usage = "__stampede [N SIZE [SLOTS KIB]]";
            let arg = |i: usize, default: usize| -> Result<usize> {
                args.get(i)
                    .map_or(Ok(default), |v| v.parse().context(usage))
            };
            let (n, size) = (arg(1, 1_000)?, arg(2, 2_000)?);
            let limits = match args.get(3) {
                Some(_) => Some((arg(3, 16)?, arg(4, 256)? << 10)),
                None => None,
            };
            let dir = tempfile::tempdir()?;
            for f in sync_figures::stampede(dir.path(), n, size, limits)? {
                println!("{}: {} {}", f.name, f.value, f.unit);
            }
            return Ok(());
        }
        Some("__relay") => {
            let usage = "__relay DATA [CATCH_UP_BATCHES BATCH_BYTES]";
            let catch_up = match (args.get(2), args.get(3)) {
                (Some(n), Some(b)) => Some((n.parse().context(usage)?, b.parse().context(usage)?)),
                _ => None,
            };
            return sync_figures::relay_main(Path::new(args.get(1).context("path")?), catch_up);
        }
        Some("__apply") => {
            // Profiling aid: how long a device takes to apply N contacts
            // arriving as snapshots (a first sync without the network).
            let n: usize = match args.get(1) {
                Some(v) => v.parse().context("__apply N")?,
                None => 10_000,
            };
            let dir = tempfile::tempdir()?;
            let mut office = Store::open(dir.path().join("office.muster"))?;
            let mut people = People::new(42);
            let batch: Vec<NewContact> = (0..n).map(|i| people.person(i).0).collect();
            let ids = office.create_contacts(&batch, EPOCH_MS)?;
            let mut entries = Vec::with_capacity(n);
            for id in &ids {
                let data: Vec<u8> = office.changes_of(id)?.concat();
                entries.push(muster_core::sync::wire::Entry {
                    doc: id.clone(),
                    form: muster_core::sync::wire::Form::Snapshot,
                    data: data.into(),
                });
            }
            // Through the device's session, as a relay's batches arrive.
            use muster_core::sync::wire::{self, Message};
            let mut device = Store::open(dir.path().join("device.muster"))?;
            let mut session = muster_core::sync::client::ClientSession::new(&device, "bench")?;
            let welcome = wire::encode(&Message::Welcome {
                protocol: wire::PROTOCOL_VERSION,
                epoch: "bench".into(),
                head: n as u64,
                cursor_trusted: true,
                role: "coordinator".into(),
            });
            session.handle_frame(&mut device, &welcome, EPOCH_MS)?;
            let frames: Vec<Vec<u8>> = entries
                .chunks(1_600)
                .map(|chunk| {
                    wire::encode(&Message::Batch {
                        entries: chunk.to_vec(),
                        cursor: wire::start_cursor("bench"),
                        remaining: 0,
                    })
                })
                .collect();
            let t = Instant::now();
            for frame in &frames {
                session.handle_frame(&mut device, frame, EPOCH_MS)?;
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "applied {n} contacts in {secs:.2} s ({:.0} µs each)",
                secs * 1e6 / n as f64
            );
            return Ok(());
        }
        Some("__duplicates") => {
            let n: usize = match args.get(1) {
                Some(v) => v.parse().context("__duplicates N")?,
                None => 100_000,
            };
            return duplicates_figure(n);
        }
        Some("__reports") => return reports_figure(args.get(1).map(Path::new)),
        Some("__create") => {
            let n: usize = match args.get(1) {
                Some(v) => v.parse().context("__create N")?,
                None => 20_000,
            };
            let dir = tempfile::tempdir()?;
            let mut store = Store::open(dir.path().join("p.muster"))?;
            let mut people = People::new(42);
            let t = Instant::now();
            for chunk in 0..n.div_ceil(1_000) {
                let batch: Vec<NewContact> = (chunk * 1_000..((chunk + 1) * 1_000).min(n))
                    .map(|i| people.person(i).0)
                    .collect();
                store.create_contacts(&batch, EPOCH_MS + chunk as i64)?;
            }
            println!("{n} contacts in {:.2} s", t.elapsed().as_secs_f64());
            return Ok(());
        }
        _ => {}
    }
    for a in &args {
        let known = ["--quick", "--markdown", "--only", "--no-automerge-repo"];
        if a.starts_with("--") && !known.contains(&a.as_str()) {
            bail!(
                "unknown option {a}; use --quick, --markdown FILE, --only core|sync, \
                 --no-automerge-repo"
            );
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let compare = !args.iter().any(|a| a == "--no-automerge-repo");
    let markdown = flag_value(&args, "--markdown")?;
    let only = flag_value(&args, "--only")?;
    if let Some(o) = only.as_deref()
        && o != "core"
        && o != "sync"
    {
        bail!("--only takes core or sync, not {o:?}");
    }
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut figures = Vec::new();
    let mut others = Vec::new();
    if only.as_deref() != Some("sync") {
        figures.extend(core_figures(
            dir.path(),
            if quick { 10_000 } else { 100_000 },
            quick,
        )?);
    }
    if only.as_deref() != Some("core") {
        let sizes: &[usize] = if quick {
            &[2_000, 10_000]
        } else {
            &[10_000, 100_000]
        };
        let devices = if quick { 20 } else { 100 };
        figures.extend(sync_figures::run(
            &dir.path().join("sync"),
            sizes,
            devices,
            quick,
        )?);
        if compare {
            // The same shapes on automerge-repo's sync server, after
            // Muster's relay has stopped, so neither shares the machine.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            // --quick compares at the smaller size only, to stay near a
            // minute.
            let compared = if quick { &sizes[..1] } else { sizes };
            // Without Node.js (or npm's registry) Muster's table still
            // prints, its comparison column empty, and says why.
            match runtime.block_on(automerge_repo::figures(
                &dir.path().join("automerge-repo"),
                compared,
                devices,
                quick,
            )) {
                Ok(pairs) => others = pairs,
                Err(e) => eprintln!("automerge-repo: left out: {e:#}"),
            }
        }
    }
    let text = table(&figures, &others);
    println!("{text}");
    println!(
        "(run took {:.0} s{})",
        started.elapsed().as_secs_f64(),
        if quick { ", --quick" } else { "" }
    );
    if let Some(path) = markdown {
        std::fs::write(&path, &text).with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(name: &str, value: &str) -> Figure {
        Figure {
            name: name.into(),
            value: value.into(),
            unit: "s",
            target: "",
        }
    }

    #[test]
    fn ratio_is_automerge_repo_over_muster_per_layout() {
        assert_eq!(ratio("2.00", "5.00 / 1.00"), "2.5 / 0.5");
        assert_eq!(ratio("100", "5 / 1"), "0.05 / 0.01");
        assert_eq!(ratio("2", "40 / not run"), "20 / -");
        assert_eq!(ratio("37 / 37", "448/384 / 74/70"), "12 / 2.0");
        // Not numbers on Muster's side: no ratio.
        assert_eq!(ratio("200 in 0.2 s", "200 in 0.1 s / -"), "-");
        assert_eq!(ratio("0", "5 / 5"), "-");
        assert_eq!(ratio("3", "failed / did not finish in 300 s"), "-");
    }

    #[test]
    fn table_puts_each_automerge_repo_value_beside_its_figure() {
        let figures = [
            figure("first sync, 10000 contacts: time", "1.00"),
            figure(
                "100 idle devices: relay memory (peak / holding them; 45 before they connected)",
                "60 / 50",
            ),
            figure("open cold", "1.4"),
        ];
        let others = [
            (
                "100 idle devices: relay memory (peak / holding them".to_string(),
                "120/100 (90 before) / 90/90 (80 before)".to_string(),
            ),
            (
                "first sync, 10000 contacts: time".to_string(),
                "6.00 / 3.00".to_string(),
            ),
            (
                "only automerge-repo has this".to_string(),
                "7 / 8".to_string(),
            ),
        ];
        let text = table(&figures, &others);
        let row = |start: &str| -> Vec<String> {
            let line = text
                .lines()
                .find(|l| l.trim_start_matches("| ").starts_with(start))
                .unwrap_or_else(|| panic!("no row {start:?} in\n{text}"));
            line.split('|').map(|c| c.trim().to_string()).collect()
        };
        let first = row("first sync, 10000");
        assert_eq!(first[2..5], ["1.00", "6.00 / 3.00", "6.0 / 3.0"]);
        let idle = row("100 idle devices");
        assert_eq!(idle[3], "120/100 (90 before) / 90/90 (80 before)");
        assert_eq!(idle[4], "2.0 / 1.5");
        let open = row("open cold");
        assert_eq!(open[3..5], ["-", "-"]);
        // A figure Muster has no row for gets its own, after the rest.
        let extra = row("only automerge-repo");
        assert_eq!(extra[2..4], ["-", "7 / 8"]);
        assert!(text.find("open cold") < text.find("only automerge-repo"));
    }
}
