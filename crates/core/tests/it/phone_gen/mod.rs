//! Generators of valid numbers for the countries with national rules, shared
//! by the property tests.

#![allow(dead_code, reason = "not every test module uses every generator")]

use proptest::prelude::*;
use ringsource_core::phone::{PhoneNumber, Region};

/// Digits a national significant number of `region` may start with, as used
/// in real numbering plans (RU 3/4/8/9, KZ 6/7, NANP area codes 2-9, …).
pub fn first_digits(region: Region) -> &'static [u8] {
    match region {
        Region::RU => b"3489",
        Region::KZ => b"67",
        Region::US | Region::CA => b"23456789",
        Region::GB => b"1237",
        Region::DE => b"23456789",
        Region::UA => b"3456789",
        Region::BY => b"1234",
    }
}

fn nsn_lengths(region: Region) -> std::ops::RangeInclusive<usize> {
    match region {
        Region::RU | Region::KZ | Region::US | Region::CA | Region::GB => 10..=10,
        Region::DE => 6..=11,
        Region::UA | Region::BY => 9..=9,
    }
}

/// A national significant number of `region` with exactly `len` digits.
pub fn nsn_of_len(region: Region, len: usize) -> impl Strategy<Value = String> {
    (prop::sample::select(first_digits(region)), prop::collection::vec(0u8..10, len - 1)).prop_map(
        move |(first, rest)| {
            let mut nsn = String::with_capacity(len);
            nsn.push(char::from(first));
            nsn.extend(rest.into_iter().map(|d| char::from(b'0' + d)));
            nsn
        },
    )
}

pub fn number_of(region: Region, nsn: &str) -> PhoneNumber {
    let e164 = format!("+{}{}", region.calling_code(), nsn);
    PhoneNumber::parse(&e164).unwrap_or_else(|e| panic!("generated {e164}: {e}"))
}

/// A region and a valid number of it.
pub fn region_number() -> impl Strategy<Value = (Region, PhoneNumber)> {
    prop::sample::select(Region::ALL.to_vec())
        .prop_flat_map(|region| (Just(region), nsn_lengths(region)))
        .prop_flat_map(|(region, len)| (Just(region), nsn_of_len(region, len)))
        .prop_map(|(region, nsn)| {
            let number = number_of(region, &nsn);
            (region, number)
        })
}

/// A region, a number of it, and a second number of the same country whose
/// national number has the same length (so every writing of the first can
/// hold the second digit for digit).
pub fn original_and_tracking() -> impl Strategy<Value = (Region, PhoneNumber, PhoneNumber)> {
    region_number().prop_flat_map(|(region, original)| {
        let len = original.national_number().len();
        (Just(region), Just(original), nsn_of_len(region, len).prop_map(move |nsn| number_of(region, &nsn)))
    })
}
