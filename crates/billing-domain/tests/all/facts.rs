//! Typed facts: the Checkout Session mode's wire strings, unknown ones included.

use billing_domain::facts::CheckoutMode;

#[test]
fn checkout_modes_round_trip_through_their_wire_strings() {
    for (mode, wire) in [
        (CheckoutMode::Payment, "payment"),
        (CheckoutMode::Subscription, "subscription"),
        (CheckoutMode::Setup, "setup"),
    ] {
        assert_eq!(mode.as_str(), wire);
        assert_eq!(mode.to_string(), wire);
        assert_eq!(CheckoutMode::parse(wire), mode);
        assert_eq!(wire.parse::<CheckoutMode>(), Ok(mode));
    }
}

#[test]
fn unknown_checkout_modes_are_kept_verbatim() {
    for wire in ["", "Payment", "installments", "unknown"] {
        let mode = CheckoutMode::parse(wire);
        assert_eq!(mode, CheckoutMode::Unknown(wire.to_owned()));
        assert_eq!(mode.as_str(), wire);
        assert_eq!(mode.to_string(), wire);
    }
}
