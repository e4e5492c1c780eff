//! Weight initialisers.
//!
//! How a network starts matters: too large and sigmoids saturate, too small
//! and signals fade layer by layer. Each scheme picks the spread of the
//! initial weights from the layer's fan-in (inputs per unit) and fan-out:
//!
//! | scheme | distribution |
//! |---|---|
//! | PyTorch's `nn.Linear` default | `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (weight and bias) |
//! | Xavier/Glorot uniform | `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))` |
//! | Xavier/Glorot normal | `N(0, 2 / (fan_in + fan_out))` |
//! | the VAE tutorial's Xavier | `N(0, std^2)`, `std = 1 / sqrt(fan_in / 2)` |
//! | He/Kaiming normal | `N(0, 2 / fan_in)` (for ReLU layers) |
//! | He/Kaiming uniform | `U(-sqrt(6 / fan_in), sqrt(6 / fan_in))` |
//! | zeros | `0` |
//!
//! All draw from a caller's seeded generator, so the same seed gives the
//! same network.

use gradtape::{Element, Tensor};
use rand::Rng;

/// A way to initialise a weight matrix of shape `[fan_out, fan_in]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// PyTorch's `nn.Linear` default; the bias uses the same bound.
    PytorchDefault,
    /// Xavier/Glorot uniform, `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`
    /// (`torch.nn.init.xavier_uniform_`); bias zero.
    XavierUniform,
    /// Xavier/Glorot normal, `N(0, 2 / (fan_in + fan_out))`
    /// (`torch.nn.init.xavier_normal_`); bias zero.
    XavierNormal,
    /// `N(0, (1 / sqrt(fan_in / 2))^2)`, as in the VAE tutorial; bias zero.
    XavierTutorial,
    /// He/Kaiming normal, `N(0, 2 / fan_in)`, for layers followed by a ReLU
    /// (`torch.nn.init.kaiming_normal_` with its defaults); bias zero.
    KaimingNormal,
    /// He/Kaiming uniform, `U(-sqrt(6 / fan_in), sqrt(6 / fan_in))`
    /// (`torch.nn.init.kaiming_uniform_` with its defaults); bias zero.
    KaimingUniform,
    /// Every weight and bias 0. The hidden units of a layer so started get
    /// equal gradients and stay alike, so this is for tests, not for training.
    Zeros,
}

impl Init {
    /// A `[fan_out, fan_in]` weight matrix.
    pub fn weight<T: Element>(self, fan_in: usize, fan_out: usize, rng: &mut impl Rng) -> Tensor<T> {
        let shape = [fan_out, fan_in];
        let (i, o) = (fan_in as f64, fan_out as f64);
        match self {
            Init::PytorchDefault => uniform(&shape, 1.0 / i.sqrt(), rng),
            Init::XavierUniform => uniform(&shape, (6.0 / (i + o)).sqrt(), rng),
            Init::XavierNormal => Tensor::normal_with(&shape, 0.0, (2.0 / (i + o)).sqrt(), rng),
            Init::XavierTutorial => Tensor::normal_with(&shape, 0.0, 1.0 / (i / 2.0).sqrt(), rng),
            Init::KaimingNormal => Tensor::normal_with(&shape, 0.0, (2.0 / i).sqrt(), rng),
            Init::KaimingUniform => uniform(&shape, (6.0 / i).sqrt(), rng),
            Init::Zeros => Tensor::zeros(&shape),
        }
    }

    /// A `[fan_out]` bias: PyTorch's default bound for [`Init::PytorchDefault`],
    /// zeros otherwise.
    pub fn bias<T: Element>(self, fan_in: usize, fan_out: usize, rng: &mut impl Rng) -> Tensor<T> {
        match self {
            Init::PytorchDefault => uniform(&[fan_out], 1.0 / (fan_in as f64).sqrt(), rng),
            _ => Tensor::zeros(&[fan_out]),
        }
    }
}

fn uniform<T: Element>(shape: &[usize], bound: f64, rng: &mut impl Rng) -> Tensor<T> {
    Tensor::uniform_with(shape, -bound, bound, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn spread(t: &Tensor<f64>) -> (f64, f64, f64) {
        let n = t.len() as f64;
        let mean = t.data().iter().sum::<f64>() / n;
        let var = t.data().iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let max = t.data().iter().fold(0.0f64, |m, x| m.max(x.abs()));
        (mean, var.sqrt(), max)
    }

    #[test]
    fn each_scheme_has_its_documented_spread() {
        let mut rng = StdRng::seed_from_u64(0);
        let (fan_in, fan_out) = (400, 300);
        let check_std = |init: Init, want: f64, rng: &mut StdRng| {
            let (mean, std, _) = spread(&init.weight(fan_in, fan_out, rng));
            assert!(mean.abs() < 0.01 * want.max(0.01), "{init:?} mean {mean}");
            assert!((std - want).abs() < 0.02 * want, "{init:?} std {std}, want {want}");
        };
        let (i, o) = (fan_in as f64, fan_out as f64);
        check_std(Init::PytorchDefault, 1.0 / i.sqrt() / 3f64.sqrt(), &mut rng);
        check_std(Init::XavierUniform, (6.0 / (i + o)).sqrt() / 3f64.sqrt(), &mut rng);
        check_std(Init::XavierNormal, (2.0 / (i + o)).sqrt(), &mut rng);
        check_std(Init::XavierTutorial, 1.0 / (i / 2.0).sqrt(), &mut rng);
        check_std(Init::KaimingNormal, (2.0 / i).sqrt(), &mut rng);
        check_std(Init::KaimingUniform, (6.0 / i).sqrt() / 3f64.sqrt(), &mut rng);
        let (_, _, max) = spread(&Init::PytorchDefault.weight(fan_in, fan_out, &mut rng));
        assert!(max <= 1.0 / i.sqrt());
        assert!(Init::Zeros.weight::<f64>(3, 2, &mut rng).data().iter().all(|&x| x == 0.0));
        assert!(Init::XavierTutorial.bias::<f64>(3, 2, &mut rng).data().iter().all(|&x| x == 0.0));
        let b = Init::PytorchDefault.bias::<f64>(4, 1000, &mut rng);
        assert!(b.data().iter().all(|&x| x.abs() <= 0.5) && b.data().iter().any(|&x| x.abs() > 0.4));
    }

    #[test]
    fn the_same_seed_gives_the_same_weights() {
        let a: Tensor<f32> = Init::XavierNormal.weight(5, 3, &mut StdRng::seed_from_u64(9));
        let b: Tensor<f32> = Init::XavierNormal.weight(5, 3, &mut StdRng::seed_from_u64(9));
        assert_eq!(a, b);
        let c: Tensor<f32> = Init::XavierNormal.weight(5, 3, &mut StdRng::seed_from_u64(10));
        assert_ne!(a, c, "another seed, other weights");
        assert_eq!(a.shape(), &[3, 5]);
    }
}
