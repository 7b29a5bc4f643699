"""The demo shop's plans: regions, sizes, prices and how popular each one is."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoPlan:
    name: str
    region: str
    data_mb: int
    validity_days: int
    price_minor_units: int
    currency: str
    popularity: float


# (region, currency, price of the 1 GB / 5 GB / 20 GB plan, how often the region is bought)
REGIONS = [
    ("Europe", "EUR", (499, 1499, 3499), 0.30),
    ("United States", "USD", (599, 1699, 3999), 0.20),
    ("United Kingdom", "GBP", (449, 1299, 2999), 0.12),
    ("Asia", "USD", (699, 1899, 4499), 0.12),
    ("Japan", "USD", (799, 1999, 4799), 0.08),
    ("Latin America", "USD", (899, 2299, 5499), 0.07),
    ("Middle East", "USD", (999, 2599, 5999), 0.05),
    ("Global", "USD", (1299, 3499, 7999), 0.06),
]
# (data in MB, validity in days, share of the region's buyers)
SIZES = [(1024, 7, 0.45), (5120, 30, 0.40), (20480, 30, 0.15)]


def demo_plans() -> list[DemoPlan]:
    """24 plans in 8 regions and 3 currencies."""
    plans = []
    for region, currency, prices, region_share in REGIONS:
        for (data_mb, validity_days, size_share), price in zip(SIZES, prices, strict=True):
            size = f"{data_mb // 1024} GB"
            plans.append(
                DemoPlan(
                    name=f"{region} {size} / {validity_days} days",
                    region=region,
                    data_mb=data_mb,
                    validity_days=validity_days,
                    price_minor_units=price,
                    currency=currency,
                    popularity=region_share * size_share,
                )
            )
    return plans


FIRST_NAMES = ["anna", "ben", "carla", "david", "elif", "farid", "grace", "hiro", "ines", "jonas", "kemi",
               "liam", "maya", "noah", "olga", "pablo", "quinn", "rosa", "sami", "tara", "umar", "vera",
               "wei", "ximena", "yusuf", "zoe"]
LAST_NAMES = ["smith", "muller", "garcia", "rossi", "tanaka", "kim", "silva", "nowak", "dubois", "jensen",
              "okafor", "haddad", "chen", "patel", "ivanova", "lopez"]
