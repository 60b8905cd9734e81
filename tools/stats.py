"""
The statistics of tools/claims.py, in plain Python (no scipy): Student's t distribution through the regularized
incomplete beta function, the paired and one-sample t-tests, Welch's test, and the exact rank test of the
projection pairs (a Mann-Whitney count, its null distribution enumerated, not approximated).

    p = t_pvalue(t, df)           # two-sided: P(|T| >= |t|) for T ~ Student's t with df degrees of freedom
    q = t_quantile(0.975, df)     # the t value of a two-sided 95% interval (4.303 for df = 2)
"""

import math
from fractions import Fraction


def _beta_continued_fraction(a, b, x, eps=1e-15, max_terms=10_000):
    """The continued fraction of I_x(a, b) (Abramowitz & Stegun 26.5.8), evaluated by the modified Lentz method:
    1 / (1 + d_1 / (1 + d_2 / (1 + ...))) with d_{2m+1} = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1)) and
    d_{2m} = m(b-m)x / ((a+2m-1)(a+2m)). Converges fast for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, max_terms):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),            # d_{2m}
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # d_{2m+1}
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            return result
    raise ArithmeticError(f'incomplete beta: no convergence for a={a}, b={b}, x={x}')


def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f'betainc: x must lie in [0, 1], got {x}')
    if x in (0.0, 1.0):
        return x
    # x^a (1-x)^b / B(a, b), in logs
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b  # I_x(a, b) = 1 - I_{1-x}(b, a)


def t_pvalue(t, df):
    """Two-sided p-value of Student's t: P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2)."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(q, df):
    """The q-quantile of Student's t with df degrees of freedom (q in (0.5, 1)), by bisection on t_pvalue."""
    if not 0.5 < q < 1.0:
        raise ValueError(f't_quantile: q must lie in (0.5, 1), got {q}')
    target = 2.0 * (1.0 - q)  # the two-sided p-value of the quantile
    lo, hi = 0.0, 1.0
    while t_pvalue(hi, df) > target:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_pvalue(mid, df) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def mean_std(values):
    """(mean, sample std) of a list; std 0 for one value."""
    n, mean = len(values), sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0


def one_sample_t(values, constant=0.0):
    """The two-sided one-sample t-test of mean(values) = constant (for paired arms: values = the per-seed
    differences, constant 0). Returns dict(mean, se, t, df, p, ci95): mean of values - constant, its standard
    error, t = mean / se, df = n - 1, the p-value, and the 95% interval of the mean difference. Every value
    equal (se 0): t is infinite (p 0) unless the mean difference is 0 too (p 1)."""
    n = len(values)
    if n < 2:
        raise ValueError('a t-test needs at least 2 values')
    mean, std = mean_std([v - constant for v in values])
    if std <= 1e-9 * max(1.0, abs(mean)):  # equal up to rounding (e.g. 1/7 - 1/14 computed two ways): equal
        std = 0.0
    se = std / math.sqrt(n)
    t = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    half = t_quantile(0.975, n - 1) * se
    return dict(mean=mean, se=se, t=t, df=n - 1, p=t_pvalue(t, n - 1) if mean != 0 else 1.0,
                ci95=(mean - half, mean + half))


def paired_t(a, b):
    """The paired t-test of arms a and b (one value per seed, the same seeds in the same order): the one-sample
    t-test of the differences a - b."""
    if len(a) != len(b):
        raise ValueError(f'paired values of unequal length: {len(a)} and {len(b)}')
    return one_sample_t([x - y for x, y in zip(a, b)])


def welch_t(a, b):
    """Welch's two-sample t-test (unequal variances, Welch-Satterthwaite degrees of freedom), for two arms that
    are not paired (different datasets). Same keys as one_sample_t, df a real number."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    se = math.sqrt(va + vb)
    mean = ma - mb
    if se == 0:
        df = len(a) + len(b) - 2
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    else:
        df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
        t = mean / se
    half = t_quantile(0.975, df) * se
    return dict(mean=mean, se=se, t=t, df=df, p=t_pvalue(t, df) if mean != 0 else 1.0,
                ci95=(mean - half, mean + half))


# -----------------------------------------------------------------------------
# the exact rank test: are k marked entries of a matrix larger than the others, more than chance would have it?


def wins(marked, others):
    """The Mann-Whitney count: pairs (m, o) of a marked value m and an unmarked value o with m > o strictly (a
    tie counts as a loss, which can only make the test below more conservative)."""
    return sum(m > o for m in marked for o in others)


def wins_null(k, n):
    """The exact null distribution of wins() when the k marked entries are k of n entries drawn at random:
    counts[u] = the number of k-subsets of n distinct values whose count is u (u = 0 .. k (n - k)), from the
    subsets of ranks {1..n} with rank sum u + k (k + 1) / 2, counted by dynamic programming."""
    # ways[j][s]: j-subsets of the ranks seen so far with rank sum s
    top = k * n
    ways = [[0] * (top + 1) for _ in range(k + 1)]
    ways[0][0] = 1
    for rank in range(1, n + 1):
        for j in range(min(k, rank), 0, -1):
            row, below = ways[j], ways[j - 1]
            for s in range(top, rank - 1, -1):
                row[s] += below[s - rank]
    offset = k * (k + 1) // 2
    return ways[k][offset:offset + k * (n - k) + 1]


def rank_test(groups):
    """The exact one-sided test that marked entries rank above the others, pooled over independent groups (each
    projection matrix W of each seed): groups is a list of (marked values, other values). The statistic is the
    total Mann-Whitney count over the groups; under the null hypothesis (in each group, the marked entries are a
    random subset of its entries) each group's count follows wins_null, independently, and the distribution of
    the total is their convolution, enumerated exactly. Returns dict(auc: the pooled share of (marked, other)
    pairs won, wins, pairs, p = P(total >= observed) under the null)."""
    observed, pairs = 0, 0
    total = [1]  # the null distribution of the running total, in counts
    for marked, others in groups:
        observed += wins(marked, others)
        pairs += len(marked) * len(others)
        counts = wins_null(len(marked), len(marked) + len(others))
        convolved = [0] * (len(total) + len(counts) - 1)
        for u, c in enumerate(total):
            if c:
                for v, d in enumerate(counts):
                    convolved[u + v] += c * d
        total = convolved
    p = Fraction(sum(total[observed:]), sum(total))
    return dict(auc=observed / pairs, wins=observed, pairs=pairs, p=float(p))
