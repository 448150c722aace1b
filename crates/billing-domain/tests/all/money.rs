//! Currency parsing and money display.

use billing_domain::{Currency, DomainError, Money};
use proptest::prelude::*;

#[test]
fn currency_parses_three_letters_in_either_case_and_lowercases() {
    for (input, expected) in [
        ("usd", "usd"),
        ("USD", "usd"),
        ("Eur", "eur"),
        ("jPy", "jpy"),
    ] {
        let currency = Currency::parse(input).unwrap();
        assert_eq!(currency.as_str(), expected);
        assert_eq!(currency.to_string(), expected);
    }
}

#[test]
fn currency_rejects_anything_else() {
    for input in ["", "us", "usdd", "u5d", "us ", " usd", "€€€", "ü.s", "12 "] {
        assert_eq!(
            Currency::parse(input),
            Err(DomainError::InvalidCurrency(input.to_owned())),
            "{input:?}"
        );
    }
    assert!(
        Currency::parse("xx")
            .unwrap_err()
            .to_string()
            .contains("three letters")
    );
}

#[test]
fn currency_converts_from_and_into_strings() {
    let currency = Currency::try_from("GBP".to_owned()).unwrap();
    assert_eq!(String::from(currency.clone()), "gbp");
    assert!(Currency::try_from("pounds".to_owned()).is_err());
}

#[test]
fn money_displays_minor_units_and_currency() {
    let usd = Currency::parse("usd").unwrap();
    assert_eq!(Money::new(1999, usd.clone()).to_string(), "1999 usd");
    assert_eq!(Money::new(0, usd.clone()).to_string(), "0 usd");
    assert_eq!(Money::new(-500, usd).to_string(), "-500 usd");
    let jpy = Currency::parse("JPY").unwrap();
    assert_eq!(Money::new(1000, jpy.clone()).to_string(), "1000 jpy");
    let money = Money::new(i64::MIN, jpy);
    assert_eq!(money.amount_minor, i64::MIN);
    assert_eq!(money.to_string(), format!("{} jpy", i64::MIN));
}

proptest! {
    #[test]
    fn currency_parse_accepts_exactly_three_ascii_letters(s in "\\PC{0,5}") {
        let ok = s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic());
        match Currency::parse(&s) {
            Ok(c) => {
                prop_assert!(ok);
                prop_assert_eq!(c.as_str(), s.to_ascii_lowercase());
            }
            Err(_) => prop_assert!(!ok),
        }
    }
}
