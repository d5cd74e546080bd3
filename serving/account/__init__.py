"""The account page of a company for its owning rep: the people, who is engaging, who is missing
from the buying committee, and the account's score.

One module a step, as the portrait's: `schemas` (the response models), `reader` (the middle
layer into an `AccountPage`), `render` (the HTML page), `api` (the route). Access, masking and
audit are the portrait's (leadscore.access): a sales rep sees the accounts they own only, every
person's contacts are masked, every answer to a known caller is audited.
"""
