//! The contract's risk level and the host's ([`proofpix_model::RiskLevel`]): the same five
//! levels, converted case by case so a level added on either side fails to compile here.

use crate::contract::RiskLevel as Wire;
use proofpix_model::RiskLevel;

impl From<RiskLevel> for Wire {
    fn from(r: RiskLevel) -> Self {
        match r {
            RiskLevel::None => Wire::None,
            RiskLevel::Low => Wire::Low,
            RiskLevel::Medium => Wire::Medium,
            RiskLevel::High => Wire::High,
            RiskLevel::Critical => Wire::Critical,
        }
    }
}

impl From<Wire> for RiskLevel {
    fn from(r: Wire) -> Self {
        match r {
            Wire::None => RiskLevel::None,
            Wire::Low => RiskLevel::Low,
            Wire::Medium => RiskLevel::Medium,
            Wire::High => RiskLevel::High,
            Wire::Critical => RiskLevel::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_converts_both_ways_and_keeps_its_order() {
        let wire: Vec<Wire> = RiskLevel::ALL.into_iter().map(Wire::from).collect();
        for (level, w) in RiskLevel::ALL.into_iter().zip(&wire) {
            assert_eq!(RiskLevel::from(*w), level);
        }
        assert_eq!(wire.first(), Some(&Wire::None));
        assert_eq!(wire.last(), Some(&Wire::Critical));
    }
}
